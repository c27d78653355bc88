"""What the runtime executes: containers with their files, addresses and waits, in levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Wait:
    """How to know a container is ready: an HTTP answer, a file inside it, or a command's success."""

    kind: Literal["http", "tcp", "file", "exec", "none"]
    target: str = ""  # url for http, ip:port for tcp, path for file, shell command for exec
    timeout: float = 90.0


@dataclass
class ContainerPlan:
    instance: str  # e.g. web-1; also its DNS alias on the run network
    service: str
    kind: str
    image: str  # a built-in image context name (images/<name>) or a user image reference
    builtin_image: bool
    ip: str
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)  # absolute path in container -> content
    dirs: dict[str, str] = field(default_factory=dict)  # container dir -> host dir copied into it
    setup: list[str] = field(default_factory=list)  # shell commands run inside once it is ready
    cap_add: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)  # service names
    wait: Wait = field(default_factory=lambda: Wait("none"))
    cpus: float | None = None
    memory: str | None = None


@dataclass
class ScrapeTarget:
    job: str
    address: str  # host:port
    instance: str
    path: str = "/metrics"


@dataclass
class RunPlan:
    run_id: str
    topology: str
    subnet: str
    gateway: str
    containers: list[ContainerPlan]
    levels: list[list[ContainerPlan]]
    vips: dict[str, str]  # LB service -> VIP
    secrets: dict[str, str]
    load_url: str
    prometheus_url: str
    scrape: list[ScrapeTarget]
    toxiproxy: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # link name -> (API url, proxy name)
    seed: int = 0
    # VIP's service -> the instance that holds it once the pair has settled; None when the pair
    # does not preempt (whichever node won the first election keeps it)
    vip_owner: dict[str, str | None] = field(default_factory=dict)

    def container(self, instance: str) -> ContainerPlan:
        return next(c for c in self.containers if c.instance == instance)

    def instances(self, service: str) -> list[ContainerPlan]:
        return [c for c in self.containers if c.service == service]
