"""What the harness has running on this machine, found by label (for `status`, `down`, `gc`)."""

from __future__ import annotations

from dataclasses import dataclass

from docker.models.containers import Container

from harness.runtime import labels
from harness.runtime.docker import client


@dataclass
class Row:
    run_id: str
    topology: str
    instance: str
    service: str
    status: str
    ip: str
    holds_vip: str | None


def _ip(c: Container) -> str:
    nets = c.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    return next((n.get("IPAddress") or "" for n in nets.values()), "")


def _holds_vip(c: Container) -> str | None:
    vip = c.labels.get(labels.VIP)
    if not vip or c.status != "running":
        return None
    try:
        code, out = c.exec_run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
    except Exception:  # noqa: BLE001 - a container going away holds nothing
        return None
    return vip if code == 0 and f" {vip}/" in out.decode() else None


def rows(run_id: str | None = None) -> list[Row]:
    out = []
    for c in client().containers.list(all=True, filters=labels.run_filter(run_id)):
        out.append(
            Row(
                run_id=c.labels.get(labels.RUN, "?"),
                topology=c.labels.get(labels.TOPOLOGY, "?"),
                instance=c.labels.get(labels.INSTANCE, c.name),
                service=c.labels.get(labels.SERVICE, "?"),
                status=c.status,
                ip=_ip(c),
                holds_vip=_holds_vip(c),
            )
        )
    return sorted(out, key=lambda r: (r.run_id, r.service, r.instance))


def run_ids() -> list[str]:
    ids = {
        c.labels.get(labels.RUN, "")
        for c in client().containers.list(all=True, filters=labels.run_filter())
    }
    ids |= {
        n.attrs.get("Labels", {}).get(labels.RUN, "")
        for n in client().networks.list(filters=labels.run_filter())
    }
    return sorted(i for i in ids if i)
