"""What every service kind module provides, and the context it renders with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.plan.model import ContainerPlan, ScrapeTarget
from harness.spec.models import Topology
from harness.spec.semantic import instance_names

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **values: Any) -> str:
    return TEMPLATES.get_template(template).render(**values)


@dataclass
class Context:
    """Names and addresses the kinds render their configs with."""

    topology: Topology
    run_id: str
    gateway: str
    ips: dict[str, str]  # instance -> IP
    vips: dict[str, str]  # service -> VIP
    secrets: dict[str, str]
    metrics_targets: list[ScrapeTarget] = field(default_factory=list)

    def instances(self, service: str) -> list[str]:
        return instance_names(service, self.topology.services[service].replicas)

    def endpoint(self, client: str, server: str, port: int) -> tuple[str, int]:
        """Where `client`'s instances reach `server`: directly, or through its Toxiproxy link."""
        from harness.kinds import toxiproxy

        for link in self.topology.links:
            if link.from_ == client and link.to == server:
                proxy = self.first_of_kind("toxiproxy")
                assert proxy is not None
                return self.ips[self.instances(proxy)[0]], toxiproxy.proxy_port(self, link)
        return self.ips[self.instances(server)[0]], port

    def first_of_kind(self, kind: str) -> str | None:
        return next((n for n, s in self.topology.services.items() if s.kind == kind), None)


def apply_overrides(plan: ContainerPlan, svc: Any) -> ContainerPlan:
    """The overrides every service accepts: env, command, resources."""
    plan.env.update(svc.env)
    if svc.command is not None:
        plan.command = svc.command.split() if isinstance(svc.command, str) else list(svc.command)
    if svc.resources is not None:
        plan.cpus, plan.memory = svc.resources.cpus, svc.resources.memory
    plan.depends_on = list(svc.depends_on)
    return plan
