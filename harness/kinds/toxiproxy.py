"""Toxiproxy on the declared `links:`: one proxy container per run, one proxy per link. The
`from` service's clients connect to the proxy instead of the `to` service, so latency, bandwidth,
timeouts and cuts can be applied to exactly that link. The harness's own proxy speaks
Toxiproxy's API; `image:` swaps in a real Toxiproxy (same API, same config file format)."""

from __future__ import annotations

import json

from harness import kinds
from harness.kinds.base import Context, apply_overrides
from harness.kinds.descriptor import Descriptor
from harness.kinds.links import proxy_name, proxy_port
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import ToxiproxyService

IMAGE = "toxiproxy"
API_PORT = 8474
__all__ = ["API_PORT", "containers", "proxy_name", "proxy_port", "upstream_port"]


def upstream_port(kind: str) -> int:
    """The port a link's `to` service answers on: the first its kind declares."""
    return next(iter(kinds.descriptor(kind).ports.values()))


def containers(ctx: Context, name: str, svc: ToxiproxyService) -> list[ContainerPlan]:
    inst = ctx.instances(name)[0]
    proxies = []
    for link in ctx.topology.links:
        to_kind = ctx.topology.services[link.to].kind
        upstream = f"{ctx.upstream(link.from_, link.to)}:{upstream_port(to_kind)}"
        proxies.append(
            {
                "name": proxy_name(link),
                "listen": f"0.0.0.0:{proxy_port(ctx.topology, link)}",
                "upstream": upstream,
                "enabled": True,
            }
        )
    builtin = svc.image is None
    command = (
        [
            "--seed",
            str(ctx.topology.seed),
            "--config",
            "/etc/toxiproxy.json",
        ]  # after the image's entrypoint
        if builtin
        else ["-host", "0.0.0.0", "-config", "/etc/toxiproxy.json"]
    )
    plan = ContainerPlan(
        instance=inst,
        service=name,
        kind="toxiproxy",
        image=svc.image or IMAGE,
        builtin_image=builtin,
        ip=ctx.ips[inst],
        command=command,
        files={"/etc/toxiproxy.json": json.dumps(proxies, indent=2)},
        wait=Wait("http", f"http://{ctx.ips[inst]}:{API_PORT}/proxies", 30),
    )
    return [apply_overrides(plan, svc, ctx, "/etc/toxiproxy.json")]


DESCRIPTOR = Descriptor(image=IMAGE, ports={"api": API_PORT})
