"""What every service kind module provides, and the context it renders with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox

from harness.kinds.links import proxy_port
from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.roles import Role, kinds_of
from harness.spec.files import MAX_USER_FILE_BYTES, FileProblem, read_bounded
from harness.spec.liveness import instance_names
from harness.spec.models import Topology

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

DB_KINDS = kinds_of(Role.DATABASE)
LB_KINDS = kinds_of(Role.LOAD_BALANCER)


def render(template: str, **values: Any) -> str:
    return TEMPLATES.get_template(template).render(**values)


class UserFileError(ValueError):
    """A user's config file or template that cannot become the file a container gets: the
    message says where (the template's own line) and carries its fix."""

    def __init__(self, service: str, dest: str | None, message: str) -> None:
        super().__init__(message)
        self.service, self.dest, self.message = service, dest, message


MAX_RENDERED_BYTES = 4 * MAX_USER_FILE_BYTES
TEMPLATE_NAMES = "services, ips, vips, secrets, this, gateway, run_id, topology"


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The template line an error was raised at (Jinja2 maps its frames to template lines)."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


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
    prefixlen: int = 24  # of the run's subnet: a VIP is added with it

    def instances(self, service: str) -> list[str]:
        return instance_names(service, self.topology.services[service].replicas)

    def endpoint(self, client: str, server: str, port: int) -> tuple[str, int]:
        """Where `client`'s instances reach `server`: directly, or through its Toxiproxy link."""
        for link in self.topology.links:
            if link.from_ == client and link.to == server:
                proxy = self.first_of_kind(*kinds_of(Role.PROXY))
                assert proxy is not None
                return self.ips[self.instances(proxy)[0]], proxy_port(self.topology, link)
        return self.upstream(client, server), port

    def upstream(self, client: str, server: str) -> str:
        """The address that answers for `server`: its VIP (a replicated database's primary),
        else its first instance; a service reaching itself (replication) gets the first."""
        if client != server and server in self.vips:
            return self.vips[server]
        return self.ips[self.instances(server)[0]]

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

    def user_file(
        self, path: str, instance: str, service: str = "", dest: str | None = None
    ) -> str:
        """A user's config file, rendered with Jinja2 when it ends in .j2: read through the
        bounded reader, rendered in Jinja2's sandbox (a template is input, not code), its output
        bounded too. Any failure is a UserFileError naming the template line."""
        p = Path(path) if Path(path).is_absolute() else self.base_dir / path
        try:
            text = read_bounded(p, MAX_USER_FILE_BYTES, "config file").decode("utf-8")
        except FileProblem as exc:
            raise UserFileError(service, dest, f"{p}: {exc.message}") from None
        except UnicodeDecodeError as exc:
            raise UserFileError(
                service, dest, f"{p} is not UTF-8 text: {exc.reason} (save it as UTF-8)"
            ) from None
        if p.suffix != ".j2":
            return text
        env = jinja2.sandbox.SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            loader=jinja2.FunctionLoader(lambda _: (text, str(p), lambda: True)),
        )
        where = f"{p}"
        try:
            template = env.get_template(str(p))
            out: list[str] = []
            size = 0
            for chunk in template.generate(**self.template_values(instance)):
                size += len(chunk)
                if size > MAX_RENDERED_BYTES:
                    raise UserFileError(
                        service,
                        dest,
                        f"{where} renders more than {MAX_RENDERED_BYTES:,} characters "
                        "(check its loops)",
                    )
                out.append(chunk)
        except UserFileError:
            raise
        except jinja2.TemplateSyntaxError as exc:
            raise UserFileError(
                service,
                dest,
                f"{where}:{exc.lineno}: template syntax error: {exc.message} (fix the template)",
            ) from None
        except jinja2.UndefinedError as exc:
            line = _template_line(exc, str(p))
            names = ", ".join(self.topology.services)
            raise UserFileError(
                service,
                dest,
                f"{where}:{line or 1}: {exc.message} (a template sees {TEMPLATE_NAMES}; "
                f"the services are {names})",
            ) from None
        except Exception as exc:  # noqa: BLE001 - anything a template raises is the template's
            line = _template_line(exc, str(p))
            raise UserFileError(
                service,
                dest,
                f"{where}:{line or 1}: the template failed: {type(exc).__name__}: {exc} "
                "(fix the template)",
            ) from None
        return "".join(out)


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
                raise UserFileError(
                    plan.service,
                    None,
                    f"kind {svc.kind} has no default config path "
                    "(use config: {/path/in/container: file})",
                )
            plan.files[dest] = ctx.user_file(src, plan.instance, plan.service, dest)
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
