"""`harness export compose|k8s FILE -o DIR`: the topology's plan as a Compose project (also a
Swarm stack) or as Kubernetes manifests. Writes files only."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import line, out


def add_parser(sub: Any) -> None:
    e = sub.add_parser(
        "export",
        help="write the topology as a Compose project + Swarm stack, or Kubernetes manifests",
    )
    e.add_argument("target", choices=["compose", "k8s"])
    e.add_argument("topology")
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write into")
    e.add_argument(
        "--subnet", help="the network's subnet (default: network.subnet, else 10.213.0.0/24)"
    )
    e.add_argument(
        "--run-id", help="the run id every resource is labelled with (default: a new one)"
    )
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from harness.export import export_compose, export_k8s

    if args.target == "compose":
        s = export_compose(args.topology, args.output, run_id=args.run_id, subnet=args.subnet)
        line(
            out,
            f"wrote {', '.join(s['files'])} to {args.output} (run {s['run_id']}, subnet {s['subnet']})",
        )
        line(out, f"start: cd {args.output} && docker-compose up -d; load URL {s['load_url']}")
        line(out, f"swarm: docker stack deploy -c {args.output}/docker-stack.yml NAME")
        line(out, f"images needed (harness images build): {' '.join(s['images'])}")
    else:
        s = export_k8s(args.topology, args.output, run_id=args.run_id)
        line(out, f"wrote {len(s['files'])} manifests to {args.output} (run {s['run_id']})")
        line(out, f"apply: kubectl apply -f {args.output} (chaos/ needs Chaos Mesh)")
    return 0
