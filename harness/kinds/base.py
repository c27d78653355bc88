"""What every service kind module provides, and the context it renders with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.spec.models import Topology
from harness.spec.semantic import instance_names

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

DB_KINDS = ("mariadb", "mysql")
LB_KINDS = ("haproxy", "nginx-lb")


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
    base_dir: Path = Path(".")  # the topology file's directory: user files are relative to it

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

    def first_of_kind(self, *kinds: str) -> str | None:
        return next((n for n, s in self.topology.services.items() if s.kind in kinds), None)

    def template_values(self, instance: str) -> dict[str, Any]:
        """What a user's Jinja2 config template sees."""
        services = {
            name: {
                "kind": svc.kind,
                "instances": [{"name": i, "ip": self.ips[i]} for i in self.instances(name)],
                "vip": self.vips.get(name),
            }
            for name, svc in self.topology.services.items()
        }
        return {
            "run_id": self.run_id,
            "topology": self.topology.name,
            "services": services,
            "ips": self.ips,
            "vips": self.vips,
            "secrets": self.secrets,
            "this": {"name": instance, "ip": self.ips[instance]},
            "gateway": self.gateway,
        }

    def user_file(self, path: str, instance: str) -> str:
        """A user's config file, rendered with Jinja2 when it ends in .j2."""
        p = Path(path) if Path(path).is_absolute() else self.base_dir / path
        text = p.read_text()
        if p.suffix != ".j2":
            return text
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        return env.from_string(text).render(**self.template_values(instance))


def user_wait(svc: Any, ip: str) -> Wait | None:
    hc = getattr(svc, "healthcheck", None)
    if hc is None:
        return None
    if hc.http is not None:
        path = (
            hc.http
            if hc.http.startswith(":")
            else f":80{hc.http}"
            if hc.http.startswith("/")
            else f":{hc.http}"
        )
        return Wait("http", f"http://{ip}{path}", hc.timeout)
    if hc.tcp is not None:
        return Wait("tcp", f"{ip}:{hc.tcp}", hc.timeout)
    if hc.exec is not None:
        return Wait("exec", hc.exec, hc.timeout)
    return Wait("file", hc.file or "", hc.timeout)


def apply_overrides(
    plan: ContainerPlan, svc: Any, ctx: Context | None = None, config_path: str | None = None
) -> ContainerPlan:
    """The overrides every service accepts: env, command, resources, config, healthcheck, depends_on."""
    plan.env.update(svc.env)
    if svc.command is not None:
        plan.command = svc.command.split() if isinstance(svc.command, str) else list(svc.command)
    if svc.resources is not None:
        plan.cpus, plan.memory = svc.resources.cpus, svc.resources.memory
    plan.depends_on = list(svc.depends_on)
    if ctx is not None and svc.config is not None:
        configs = {config_path: svc.config} if isinstance(svc.config, str) else dict(svc.config)
        for dest, src in configs.items():
            if dest is None:
                raise ValueError(
                    f"kind {svc.kind} has no default config path: use config: {{/path/in/container: file}}"
                )
            plan.files[dest] = ctx.user_file(src, plan.instance)
    wait = user_wait(svc, plan.ip)
    if wait is not None:
        plan.wait = wait
    return plan


def app_dirs(ctx: Context, app: str) -> dict[str, str]:
    """A user's PHP app replaces the built-in one: /srv/app/public is the document root."""
    if app == "builtin":
        return {}
    p = Path(app) if Path(app).is_absolute() else ctx.base_dir / app
    return {"/srv/app": str(p)} if (p / "public").is_dir() else {"/srv/app/public": str(p)}
