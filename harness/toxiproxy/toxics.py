"""Toxic definitions: JSON validation, per-connection state and per-chunk behaviour.

A toxic is configured once per proxy (``Toxic``) but *applied* per connection and
direction (``ToxicState``): the toxicity roll, timers and byte counters live with the
connection so that adding, updating or removing a toxic takes effect on connections
that are already open, exactly like Toxiproxy's per-link toxic stubs.

Behaviours are written as a chain: each stage gets a chunk and an ``emit`` callback for
the next stage and returns ``True`` when the connection must be closed.  Toxics that act
on time rather than on data (``timeout``, ``reset_peer``) expose a deadline that the
pump in ``proxy.py`` watches.  Standard library only: this module ships in the
container image as-is.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STREAMS = ("upstream", "downstream")

#: Attribute names and defaults per toxic type (Toxiproxy 2.x names and units).
TOXIC_TYPES: dict[str, dict[str, int]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},  # ms, ms
    "bandwidth": {"rate": 0},  # KB/s; 0 = unlimited
    "slow_close": {"delay": 0},  # ms
    "timeout": {"timeout": 0},  # ms; 0 = hold forever
    "reset_peer": {"timeout": 0},  # ms
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, µs
    "limit_data": {"bytes": 0},  # bytes
}
_GO_STRUCT = {
    "noop": "NoopToxic",
    "latency": "LatencyToxic",
    "bandwidth": "BandwidthToxic",
    "slow_close": "SlowCloseToxic",
    "timeout": "TimeoutToxic",
    "reset_peer": "ResetToxic",
    "slicer": "SlicerToxic",
    "limit_data": "LimitDataToxic",
}
_INT64 = 2**63


class ApiError(Exception):
    """An error that maps onto a Toxiproxy-style ``{"error", "status"}`` response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def go_type(value: object) -> str:
    """The JSON kind as Go's decoder names it in ``cannot unmarshal X into ...``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def bad_body(value: object, where: str, gotype: str) -> ApiError:
    """Go's ``json: cannot unmarshal ...`` error, behind Toxiproxy's ``bad request body``."""
    kind = go_type(value)
    if kind == "number" and gotype == "int64":  # Go shows the literal it could not fit
        kind = f"number {json.dumps(value)}"
    return ApiError(
        400, f"bad request body: json: cannot unmarshal {kind} into Go {where} of type {gotype}"
    )


def _number_out(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass
class Toxic:
    """A toxic as configured through the API (immutable by convention: updates replace it)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": _number_out(self.toxicity),
        }


def _attributes(kind: str, raw: object, base: Mapping[str, int]) -> dict[str, int]:
    """Merge ``raw`` over ``base`` as Go's decoder fills the toxic's struct: unknown keys
    are ignored, ``null`` leaves a value alone, anything but an int64 is rejected."""
    if raw is None:
        return dict(base)
    struct_name = _GO_STRUCT[kind]
    if not isinstance(raw, dict):
        raise bad_body(raw, "struct field ToxicWrapper.attributes", f"toxics.{struct_name}")
    attrs = dict(base)
    for key in TOXIC_TYPES[kind]:
        value = raw.get(key)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or value != int(value) or not -_INT64 <= value < _INT64:
            raise bad_body(value, f"struct field {struct_name}.attributes.{key}", "int64")
        attrs[key] = int(value)
    return attrs


def _toxicity(raw: object, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise bad_body(raw, "struct field ToxicWrapper.toxicity", "float32")
    return float(raw)  # Toxiproxy takes any number (above 1 = always, below 0 = never)


def _string(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_body(value, f"struct field ToxicWrapper.{key}", "string")
    return value


def parse_toxic(body: object) -> Toxic:
    """Build a toxic from a ``POST /proxies/{p}/toxics`` body, checked in Toxiproxy's order."""
    if not isinstance(body, dict):
        raise bad_body(body, "value", "toxics.ToxicWrapper")
    stream = _string(body, "stream", "downstream")
    if stream.lower() not in STREAMS:
        raise ApiError(400, "stream was invalid, can be either upstream or downstream")
    kind = _string(body, "type", "")
    name = _string(body, "name", "") or f"{kind}_{stream}"
    toxicity = _toxicity(body.get("toxicity"), 1.0)
    if kind not in TOXIC_TYPES:
        raise ApiError(400, "invalid toxic type")
    return Toxic(name=name, type=kind, stream=stream, toxicity=toxicity, attributes={})


def toxic_attributes(toxic: Toxic, body: dict[str, Any]) -> Toxic:
    """Second step of a create (after the name check), as in Toxiproxy."""
    toxic.attributes = _attributes(toxic.type, body.get("attributes"), TOXIC_TYPES[toxic.type])
    return toxic


def update_toxic(toxic: Toxic, body: object) -> Toxic:
    """Apply a partial update; like Toxiproxy only ``attributes`` and ``toxicity`` change.

    The result is a new object: open connections see it as a new toxic run, so they re-roll
    its toxicity and restart its timers, as Toxiproxy restarts the toxic's goroutine."""
    if not isinstance(body, dict):
        raise bad_body(body, "value", "struct { Attributes interface {}; Toxicity float32 }")
    attrs = _attributes(toxic.type, body.get("attributes"), toxic.attributes)
    toxicity = _toxicity(body.get("toxicity"), toxic.toxicity)
    return Toxic(toxic.name, toxic.type, toxic.stream, toxicity, attrs)


class ToxicState:
    """What one toxic remembers about one direction of one connection."""

    __slots__ = ("applies", "next_free", "rng", "started", "toxic", "transmitted", "triggered")

    def __init__(self, toxic: Toxic, seed: str, now: float) -> None:
        self.rng = random.Random(seed)
        self.transmitted = 0  # limit_data: kept across updates, as Toxiproxy's stub state
        self.toxic = toxic
        self._run(now)

    def _run(self, now: float) -> None:
        """A (re)started run of the toxic: roll toxicity, restart timers."""
        self.applies = self.rng.random() < self.toxic.toxicity
        self.started = now  # timeout: restarted by every chunk
        self.triggered: float | None = None  # reset_peer: first chunk seen
        self.next_free = now  # bandwidth schedule

    def sync(self, toxic: Toxic, now: float) -> None:
        """An updated toxic (a new object) starts a new run on this connection."""
        if toxic is not self.toxic:
            self.toxic = toxic
            self._run(now)


def deadline(toxic: Toxic, state: ToxicState) -> float | None:
    """Loop time at which a time-driven toxic fires, or ``None``."""
    ms = toxic.attributes.get("timeout", 0)
    if toxic.type == "timeout":
        return state.started + ms / 1000 if ms > 0 else None
    if toxic.type == "reset_peer" and state.triggered is not None:
        return state.triggered + max(ms, 0) / 1000
    return None


Emit = Callable[[bytes, float], Awaitable[bool]]
Behaviour = Callable[[Toxic, ToxicState, bytes, float, Emit], Awaitable[bool]]


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _sleep_until(when: float) -> None:
    delay = when - _now()
    if delay > 0:
        await asyncio.sleep(delay)


async def _latency(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    delay = float(toxic.attributes["latency"])
    jitter = toxic.attributes["jitter"]
    if jitter > 0:
        delay += st.rng.randrange(2 * jitter) - jitter
    # Relative to when the chunk was read, so back-to-back chunks do not add up.
    due = ts + max(0.0, delay) / 1000
    await _sleep_until(due)
    return await emit(data, due)


async def _bandwidth(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    rate = toxic.attributes["rate"]  # KB/s == bytes/ms
    if rate <= 0:
        return await emit(data, ts)
    step = rate * 100  # at most 100 ms worth of data per write, as Toxiproxy does
    for i in range(0, len(data), step):
        piece = data[i : i + step]
        # A schedule rather than plain sleeps: sleep overshoot does not lower the rate.
        st.next_free = max(st.next_free, _now()) + len(piece) / (rate * 1000)
        await _sleep_until(st.next_free)
        if await emit(piece, _now()):
            return True
    return False


def slice_bounds(average: int, variation: int, size: int, rng: random.Random) -> list[int]:
    """Toxiproxy's recursive halving: split [0, size) in two around the middle (moved by up
    to ``variation``) until a piece is at most ``average + variation`` bytes.  Returns the
    cut points, 0 and ``size`` included."""
    cuts = [0]
    stack = [(0, size)]
    while stack:
        start, end = stack.pop()
        if (end - start) - average <= variation:
            cuts.append(end)
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(2 * variation) - variation
        mid = min(max(mid, start), end)
        stack.append((mid, end))
        stack.append((start, mid))
    return cuts


async def _slicer(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    average = toxic.attributes["average_size"]
    variation = toxic.attributes["size_variation"]
    if average + variation < 1:  # Toxiproxy would recurse forever here; pass through
        return await emit(data, ts)
    delay = max(toxic.attributes["delay"], 0) / 1_000_000
    cuts = slice_bounds(average, variation, len(data), st.rng)
    view = memoryview(data)
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a == b:
            continue
        if await emit(bytes(view[a:b]), ts):
            return True
        if delay > 0:
            await asyncio.sleep(delay)
    return False


async def _limit_data(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    limit = toxic.attributes["bytes"]
    piece = data[: max(0, limit - st.transmitted)]
    st.transmitted += len(piece)
    if piece and await emit(piece, ts):
        return True
    return st.transmitted >= limit


async def _drop(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    """``timeout`` and ``reset_peer`` swallow data; their deadline closes the connection.

    A chunk restarts the ``timeout`` timer (Toxiproxy waits ``timeout`` ms after the last
    chunk); ``reset_peer`` starts its timer at the first chunk."""
    if toxic.type == "timeout":
        st.started = _now()
    elif st.triggered is None:
        st.triggered = _now()
    return False


async def _passthrough(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    """``noop`` does nothing; ``slow_close`` only acts at end of stream (``close_delay``)."""
    return await emit(data, ts)


BEHAVIOURS: dict[str, Behaviour] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slicer": _slicer,
    "limit_data": _limit_data,
    "timeout": _drop,
    "reset_peer": _drop,
    "slow_close": _passthrough,
    "noop": _passthrough,
}

Chain = Sequence[tuple[Toxic, ToxicState]]


async def run_chain(
    chain: Chain, data: bytes, ts: float, write: Callable[[bytes], Awaitable[None]]
) -> bool:
    """Push one chunk through the active toxics; ``True`` means close the connection."""

    async def stage(index: int, chunk: bytes, when: float) -> bool:
        if index == len(chain):
            await write(chunk)
            return False
        toxic, state = chain[index]
        return await BEHAVIOURS[toxic.type](
            toxic, state, chunk, when, lambda c, w: stage(index + 1, c, w)
        )

    return await stage(0, data, ts)


def close_delay(chain: Chain) -> float:
    """Seconds that ``slow_close`` toxics hold back the end of a stream."""
    return sum(max(t.attributes["delay"], 0) for t, _ in chain if t.type == "slow_close") / 1000
