"""Faults: what a chaos step does (`Fault`, exactly one kind) and each kind's parameters."""

from __future__ import annotations

import re
import signal as _signal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    WithJsonSchema,
    model_validator,
)

from harness.spec.durations import Duration
from harness.spec.models.base import (
    FilePath,
    Image,
    StrictModel,
    WaitSeconds,
    one_line,
)


class TargetSpec(StrictModel):
    """Which container(s) a fault hits when not named directly: picked from a service, seeded."""

    service: str
    pick: Literal["random", "first", "last", "all"] = "random"
    count: int | None = Field(None, ge=1, le=20)
    percent: float | None = Field(None, gt=0, le=100)


# `web-1` (an instance), `web` (one instance of the service, picked at random with the run's seed),
# `vip_holder:lb` (whoever holds the VIP of service lb when the fault fires), or a TargetSpec.
Target = str | TargetSpec


class ContainerFault(StrictModel):
    target: Target
    restore: bool = True  # undo when the window ends (start/unpause); kill defaults to False


class KillFault(ContainerFault):
    restore: bool = False


def _signal_name(value: str) -> str:
    name = value.upper()
    if name.isdigit():
        if 1 <= int(name) <= 64:
            return value
    elif ("SIG" + name.removeprefix("SIG")) in SIGNALS:
        return value
    shown = one_line(value if len(value) <= 20 else value[:17] + "...")
    raise ValueError(f"'{shown}' is not a signal (use e.g. SIGKILL, SIGTERM, SIGSTOP or SIGHUP)")


SIGNALS = sorted(
    s.name for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")
)


class ProcessKillFault(StrictModel):
    target: Target
    # e.g. php-fpm8.2, haproxy, keepalived, nginx: matched against the process name, which
    # Linux cuts at 15 characters
    process: str = Field(pattern=r"^[A-Za-z0-9._+-]{1,15}$")
    signal: Annotated[str, AfterValidator(_signal_name)] = "SIGKILL"
    restore: bool = True  # restart the process when the window ends


class VipFailoverFault(StrictModel):
    service: str
    method: Literal["kill", "stop_keepalived", "kill_lb_process"] = "kill"
    restore: bool = True


class ToxicFault(StrictModel):
    """A Toxiproxy toxic on a declared link (`web->mysql`)."""

    link: str
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    latency: Duration | None = None  # latency toxic
    jitter: Duration | None = None
    rate: int | None = Field(None, ge=0)  # bandwidth, KB/s
    timeout: Duration | None = None  # timeout, reset_peer
    delay: Duration | None = None  # slow_close; slicer (per slice)
    average_size: int | None = Field(None, ge=1)  # slicer
    size_variation: int | None = Field(None, ge=0)
    bytes: int | None = Field(None, ge=0)  # limit_data


class PartitionFault(StrictModel):
    target: Target
    peers: list[str] | Literal["all"] = "all"  # services or instances it can no longer reach


class HeartbeatFreezeFault(StrictModel):
    """Stop a registered instance's heartbeats (its registration sidecar is frozen with
    SIGSTOP): the node keeps serving, but its lease expires and the gateways drop it."""

    target: Target
    restore: bool = True  # let the heartbeats go on (SIGCONT) when the window ends


def _batch(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise ValueError(
            f"batch: {value} takes no node out, so the deploy would never move on "
            "(write batch: 1 for one node at a time, or batch: all)"
        )
    return value


# How many nodes go out at once: a count, or `all` (every node at once: the known-bad way).
Batch = Annotated[
    int | Literal["all"],
    BeforeValidator(_batch),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 20}, {"const": "all"}]}),
]
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _weight(value: object) -> float:
    """`10%` -> 0.1: the share of the traffic a canary gets."""
    m = _PERCENT.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(
            f"{one_line(str(value))!r} is not a percentage (write the canary's share of the "
            "traffic, e.g. weight: 10%)"
        )
    pct = float(m.group(1))
    if not 0 < pct < 100:
        what = "more than all the traffic" if pct > 100 else f"{pct:g}% of the traffic"
        raise ValueError(
            f"weight: {pct:g}% is {what}; a canary gets a share between 0% and 100%, "
            "the stable nodes the rest (write e.g. weight: 10%)"
        )
    return pct / 100


Weight = Annotated[
    float,
    BeforeValidator(_weight),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$",
            "description": "the canary's share of the traffic, e.g. 10%",
        }
    ),
]


class RollingRestartFault(StrictModel):
    """Restart a service's nodes batch by batch, each taken out through the LB in front first
    (HAProxy runtime API drain then maint; Nginx `down` + reload) and put back once healthy."""

    service: str
    batch: Batch = 1
    drain: bool = True  # false: restart under the LB's feet (the known-bad way)
    drain_timeout: WaitSeconds = 30.0  # in-flight requests get this long to finish


class DeployFault(RollingRestartFault):
    """Replace the app of a web/php-fpm service: every node batch by batch (`rolling`), or
    `canaries` nodes given `weight` of the traffic on the LB (`canary`). The new version is an
    app directory copied in, or a local image the nodes are recreated from."""

    app: FilePath | None = None  # a directory: public/index.php or index.php, relative to the file
    image: Image | None = None  # a local image (there is no registry): the nodes are recreated
    strategy: Literal["rolling", "canary"] = "rolling"
    weight: Weight | None = None  # canary: its share of the traffic, e.g. 10%
    canaries: int = Field(1, ge=1, le=19)  # canary: how many nodes (the service's last ones)

    @model_validator(mode="after")
    def _one_version(self) -> DeployFault:
        if (self.app is None) == (self.image is None):
            raise ValueError(
                "a deploy takes exactly one new version (give app: DIR or image: NAME)"
            )
        return self


class Fault(StrictModel):
    kill: KillFault | None = None
    stop: ContainerFault | None = None
    restart: ContainerFault | None = None
    pause: ContainerFault | None = None
    process_kill: ProcessKillFault | None = None
    vip_failover: VipFailoverFault | None = None
    latency: ToxicFault | None = None
    bandwidth: ToxicFault | None = None
    timeout: ToxicFault | None = None
    reset_peer: ToxicFault | None = None
    slow_close: ToxicFault | None = None
    slicer: ToxicFault | None = None
    limit_data: ToxicFault | None = None
    down: ToxicFault | None = None
    partition: PartitionFault | None = None
    heartbeat_freeze: HeartbeatFreezeFault | None = None
    rolling_restart: RollingRestartFault | None = None
    deploy: DeployFault | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `{kill: web-1}` is `{kill: {target: web-1}}`; `{vip_failover: lb}` is `{vip_failover: {service: lb}}`;
        # `{down: web->mysql}` is `{down: {link: web->mysql}}`.
        if isinstance(data, dict):
            keys = {"vip_failover": "service", "rolling_restart": "service"}
            keys |= dict.fromkeys(TOXIC_KINDS, "link")
            data = {
                k: ({keys.get(k, "target"): v} if isinstance(v, str) else v)
                for k, v in data.items()
            }
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Fault:
        set_ = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_) != 1:
            fix = "keep one; use one chaos step per fault" if set_ else "write e.g. {kill: web-1}"
            raise ValueError(
                f"a fault needs exactly one kind, got {len(set_)}: {', '.join(set_) or 'none'} ({fix})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def params(self) -> Any:
        return getattr(self, self.kind)


TOXIC_KINDS = (
    "latency",
    "bandwidth",
    "timeout",
    "reset_peer",
    "slow_close",
    "slicer",
    "limit_data",
    "down",
)
