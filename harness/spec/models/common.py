"""What every service has (replicas, hosts, image, env, healthcheck, resources) and the
parts several kinds share: Keepalived, checks, the run network."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from harness.spec.models.base import (
    URL_PATH,
    CheckInterval,
    EnvName,
    EnvValue,
    FilePath,
    Image,
    Millis,
    Port,
    StrictModel,
    UrlPath,
    VrrpSeconds,
    WaitSeconds,
    no_nul,
)


class Keepalived(StrictModel):
    vip: str = "auto"
    advert_int: VrrpSeconds = 1.0
    priority: int = Field(150, ge=1, le=254)
    preempt: bool = True
    track_process: bool = True

    @field_validator("vip")
    @classmethod
    def _vip(cls, v: str) -> str:
        if v != "auto":
            try:
                ipaddress.IPv4Address(v)
            except ValueError:
                raise ValueError(
                    f"'{v}' is not an IPv4 address (write 'auto', or an address inside network.subnet "
                    "such as 10.213.7.200)"
                ) from None
        return v


PRIVATE_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


class Network(StrictModel):
    """The run's bridge network. Without `subnet`, a free /24 of 10.213.0.0/16 is picked at run time."""

    subnet: str | None = None

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, v: str | None) -> str | None:
        if v is None:
            return v
        example = "e.g. 10.213.7.0/24"
        try:
            net = ipaddress.IPv4Network(v)
        except ValueError:
            try:
                loose = ipaddress.IPv4Network(v, strict=False)
            except ValueError:
                raise ValueError(f"'{v}' is not an IPv4 network (write {example})") from None
            raise ValueError(f"'{v}' has host bits set (write {loose})") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"'{v}' is a /{net.prefixlen} (use a /16 to /24, {example})")
        if not any(net.subnet_of(p) for p in PRIVATE_NETWORKS):
            raise ValueError(
                f"'{v}' is not a private network (use 10.x, 172.16-31.x or 192.168.x, {example})"
            )
        return str(net)


class Check(StrictModel):
    path: UrlPath = "/health"  # written into haproxy.cfg: `option httpchk GET <path>`
    interval: CheckInterval = 2.0
    timeout: Millis = 1.0
    fall: int = Field(default=3, ge=1, le=100)
    rise: int = Field(default=2, ge=1, le=100)


MEMORY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024**2  # Docker refuses a memory limit below 6 MB


def _memory(value: str | None) -> str | None:
    if value is not None:
        number, unit = value.rstrip("kmg"), value[len(value.rstrip("kmg")) :]
        if int(number) * MEMORY_UNITS[unit] < MIN_MEMORY:
            raise ValueError(f"{value} is below the 6m Docker allows (use at least 6m)")
    return value


class Resources(StrictModel):
    cpus: float | None = Field(None, ge=0.01, le=1024)
    memory: Annotated[
        str | None, Field(pattern=r"^[0-9]{1,15}[kmg]?$"), AfterValidator(_memory)
    ] = None


HTTP_CHECK_PATTERN = r"^(:[0-9]{1,5})?(" + URL_PATH + r")?$|^[0-9]{1,5}(" + URL_PATH + r")?$"


class HealthCheck(StrictModel):
    """How the harness knows a container is ready (exactly one of http, tcp, exec, file)."""

    # a path (`/health`), `:port` or `:port/path`, fetched from the container's IP
    http: str | None = Field(None, pattern=HTTP_CHECK_PATTERN, min_length=1, max_length=1024)
    tcp: Port | None = None
    exec: str | None = Field(None, min_length=1)  # a shell command run inside; ready on exit 0
    file: str | None = Field(None, pattern=r"^/[^\x00-\x1f]*$")  # ready when this file exists
    timeout: WaitSeconds = 90.0

    @field_validator("http")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        port = re.match(r"^:?([0-9]+)", v or "")
        if port and not 1 <= int(port[1]) <= 65535:
            raise ValueError(f"port {port[1]} is outside 1-65535 (use a port from 1 to 65535)")
        return v

    @model_validator(mode="after")
    def _one(self) -> HealthCheck:
        given = [k for k in ("http", "tcp", "exec", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            fix = "keep one" if given else "add e.g. http: /health or tcp: 6379"
            raise ValueError(
                f"a healthcheck needs exactly one of http, tcp, exec, file, got "
                f"{', '.join(given) or 'none'} ({fix})"
            )
        return self


ContainerPath = Annotated[str, Field(pattern=r"^[^\x00-\x1f]*$", max_length=4096)]


# `runtime: hosts`: an existing machine reached over SSH (user and port optional; the user's
# ssh config and agent decide the rest)
SshUrl = Annotated[
    str,
    Field(
        pattern=r"^ssh://([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$",
        max_length=330,
    ),
]
ShellCommand = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(no_nul)]


class HostControl(StrictModel):
    """How faults act on a service's hosts (`runtime: hosts`): systemd's unit by default, or
    these commands, run through SSH with the host's shell."""

    unit: str | None = Field(None, pattern=r"^[A-Za-z0-9@._:-]{1,200}$")  # default: by kind
    stop: ShellCommand | None = None  # default: systemctl stop UNIT
    start: ShellCommand | None = None  # default: systemctl start UNIT
    kill: ShellCommand | None = None  # default: systemctl kill -s KILL UNIT
    # exits 0 while the service runs (the recovery watcher's "every node runs"); default:
    # systemctl is-active --quiet UNIT
    status: ShellCommand | None = None
    # prints the stored order ids, one a line, with the SSH user's credentials (no_lost_writes);
    # default: the kind's, e.g. mysql -N -B -e 'SELECT id FROM app.orders'
    read_orders: ShellCommand | None = None
    # where its log is read over SSH (LB server UP/DOWN lines): journal (journalctl -u UNIT,
    # the default), or a file
    log: str | None = Field(None, pattern=r"^(journal|/[^\x00-\x1f]*)$")
    # where Keepalived's state changes are read (an LB with keepalived:): journal (the
    # keepalived unit, the default), or a file of its log or of a notify script's lines
    keepalived_log: str | None = Field(None, pattern=r"^(journal|/[^\x00-\x1f]*)$")


class ServiceBase(StrictModel):
    replicas: int = Field(1, ge=1, le=20)
    hosts: list[SshUrl] = Field(default_factory=list, max_length=20)  # runtime: hosts only
    lab: bool = False  # its hosts are lab machines: destructive faults need no --i-know
    control: HostControl | None = None  # runtime: hosts: how faults stop, start and kill it

    @model_validator(mode="after")
    def _replicas_are_hosts(self) -> ServiceBase:
        if self.hosts:
            if "replicas" in self.model_fields_set and self.replicas != len(self.hosts):
                raise ValueError(
                    f"replicas: {self.replicas} but {len(self.hosts)} hosts: with hosts, each "
                    "host is one instance (remove replicas:)"
                )
            self.replicas = len(self.hosts)
        return self

    image: Image | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    command: list[EnvValue] | EnvValue | None = None
    depends_on: list[str] = Field(default_factory=list)
    resources: Resources | None = None
    # A file (or Jinja2 template, *.j2) replacing the kind's main config, or {container path: file}.
    config: FilePath | dict[ContainerPath, FilePath] | None = None
    healthcheck: HealthCheck | None = None
