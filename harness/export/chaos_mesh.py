"""A topology's chaos steps as Chaos Mesh objects (chaos-mesh.org/v1alpha1): container faults
become PodChaos, link toxics NetworkChaos between the link's two services, a partition a
NetworkChaos partition. The schedule (`at`) has no counterpart in a single object: each step is
written with its duration, and applying them in order at their offsets is left to the user (or
a Chaos Mesh Workflow)."""

from __future__ import annotations

from typing import Any

from harness.export.plan import Exported, k8s_name

API = "chaos-mesh.org/v1alpha1"


def _selector(exp: Exported, target: str) -> dict[str, Any]:
    """A service, or one instance (web-2 is the StatefulSet's pod web-1)."""
    for service in exp.topology.services:
        names = [c.instance for c in exp.plan.instances(service)]
        if target == service:
            return {"labelSelectors": {"app.kubernetes.io/name": k8s_name(service)}}
        if target in names:
            pod = f"{k8s_name(service)}-{names.index(target)}"
            return {"pods": {"default": [pod]}}
    return {"labelSelectors": {"app.kubernetes.io/name": k8s_name(target)}}


def _target(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(getattr(value, "service", None) or getattr(value, "instance", None) or value)


def _seconds(v: float | None, default: float = 10) -> str:
    return f"{int(v or default)}s"


def chaos_objects(exp: Exported) -> tuple[list[dict[str, Any]], list[str]]:
    objs: list[dict[str, Any]] = []
    unmapped: list[str] = []
    for i, step in enumerate(getattr(exp.topology, "chaos", []) or []):
        name = f"step-{i + 1}"
        meta = {
            "name": name,
            "annotations": {"harness.io/step": step.name, "harness.io/at": f"{step.at:g}s"},
        }
        f = step.fault
        spec: dict[str, Any] | None = None
        kind = "PodChaos"
        if f.kill or f.restart:
            fault = f.kill or f.restart
            spec = {
                "action": "pod-kill",
                "mode": "one",
                "selector": _selector(exp, _target(fault.target)),
            }
        elif f.stop or f.pause:
            fault = f.stop or f.pause
            spec = {
                "action": "pod-failure",
                "mode": "one",
                "selector": _selector(exp, _target(fault.target)),
                "duration": _seconds(step.for_),
            }
        elif f.process_kill:
            spec = {
                "action": "container-kill",
                "mode": "one",
                "selector": _selector(exp, _target(f.process_kill.target)),
                "containerNames": [_target(f.process_kill.target).rsplit("-", 1)[0]],
            }
        elif f.vip_failover:
            spec = {
                "action": "pod-kill",
                "mode": "one",
                "selector": _selector(exp, f.vip_failover.service),
            }
        elif f.partition:
            kind = "NetworkChaos"
            peers = f.partition.peers
            spec = {
                "action": "partition",
                "mode": "all",
                "selector": _selector(exp, _target(f.partition.target)),
                "direction": "both",
                "duration": _seconds(step.for_),
            }
            if peers != "all":
                spec["target"] = {"mode": "all", "selector": _selector(exp, peers[0])}
        elif f.latency or f.bandwidth or f.down:
            kind = "NetworkChaos"
            toxic = f.latency or f.bandwidth or f.down
            assert toxic is not None
            src, _, dst = toxic.link.partition("->")
            spec = {
                "mode": "all",
                "selector": _selector(exp, src),
                "direction": "to",
                "target": {"mode": "all", "selector": _selector(exp, dst)},
                "duration": _seconds(step.for_),
            }
            if f.latency:
                spec["action"] = "delay"
                spec["delay"] = {
                    "latency": f"{int((toxic.latency or 0) * 1000)}ms",
                    "jitter": f"{int((getattr(toxic, 'jitter', None) or 0) * 1000)}ms",
                }
            elif f.bandwidth:
                spec["action"] = "bandwidth"
                rate = getattr(toxic, "rate", None) or 100
                spec["bandwidth"] = {"rate": f"{int(rate)}kbps", "limit": 20971520, "buffer": 10000}
            else:
                spec["action"] = "loss"
                spec["loss"] = {"loss": "100"}
        if spec is None:
            which = next(k for k, v in f.model_dump(exclude_none=True).items() if v is not None)
            unmapped.append(f"{step.name}: {which} has no Chaos Mesh counterpart")
            continue
        objs.append({"apiVersion": API, "kind": kind, "metadata": meta, "spec": spec})
    return objs, unmapped
