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
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STREAMS = ("upstream", "downstream")

#: Attribute names and defaults per toxic type (Toxiproxy 2.x names and units).
TOXIC_TYPES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},  # ms, ms
    "bandwidth": {"rate": 0},  # KB/s; 0 = unlimited
    "slow_close": {"delay": 0},  # ms
    "timeout": {"timeout": 0},  # ms; 0 = hold forever
    "reset_peer": {"timeout": 0},  # ms
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, µs
    "limit_data": {"bytes": 0},  # bytes
}


class ApiError(Exception):
    """An error that maps onto a Toxiproxy-style ``{"error", "status"}`` response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Toxic:
    """A toxic as configured through the API (immutable by convention: updates replace it)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"bad request body: {what} must be a number")
    return float(value)


def _attributes(kind: str, raw: object, base: Mapping[str, int]) -> dict[str, int]:
    """Merge ``raw`` over ``base``; unknown keys are ignored like Go's JSON decoder does."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(400, "bad request body: attributes must be an object")
    attrs = dict(base)
    for key in TOXIC_TYPES[kind]:
        if key in raw:
            value = _number(raw[key], f"attributes.{key}")
            if value < 0 or value != int(value):
                raise ApiError(400, f"bad request body: attributes.{key} must be an integer >= 0")
            attrs[key] = int(value)
    return attrs


def _toxicity(raw: object) -> float:
    value = _number(raw, "toxicity")
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, "bad request body: toxicity must be between 0 and 1")
    return value


def parse_toxic(body: object) -> Toxic:
    """Build a toxic from a ``POST /proxies/{p}/toxics`` body (defaults as in Toxiproxy)."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: expected a JSON object")
    stream = body.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ApiError(400, "stream was invalid, can be either upstream or downstream")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in TOXIC_TYPES:
        raise ApiError(400, "invalid toxic type")
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise ApiError(400, "bad request body: name must be a string")
    toxicity = _toxicity(body["toxicity"]) if body.get("toxicity") is not None else 1.0
    attrs = _attributes(kind, body.get("attributes"), TOXIC_TYPES[kind])
    return Toxic(name=name, type=kind, stream=stream, toxicity=toxicity, attributes=attrs)


def update_toxic(toxic: Toxic, body: object) -> Toxic:
    """Apply a partial update; like Toxiproxy only ``attributes`` and ``toxicity`` change."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: expected a JSON object")
    toxicity = _toxicity(body["toxicity"]) if body.get("toxicity") is not None else toxic.toxicity
    attrs = _attributes(toxic.type, body.get("attributes"), toxic.attributes)
    return Toxic(toxic.name, toxic.type, toxic.stream, toxicity, attrs)


class ToxicState:
    """What one toxic remembers about one direction of one connection."""

    __slots__ = ("applies", "next_free", "rng", "started", "toxicity", "transmitted", "triggered")

    def __init__(self, toxic: Toxic, rng: random.Random, now: float) -> None:
        self.rng = rng
        self.started = now  # when this connection first saw the toxic (timeout timer)
        self.triggered: float | None = None  # first chunk seen (reset_peer timer)
        self.transmitted = 0  # limit_data
        self.next_free = now  # bandwidth schedule
        self.toxicity = -1.0
        self.applies = False
        self.sync(toxic)

    def sync(self, toxic: Toxic) -> None:
        """(Re-)roll the per-connection toxicity decision when the toxicity changes."""
        if toxic.toxicity != self.toxicity:
            self.toxicity = toxic.toxicity
            self.applies = self.rng.random() < toxic.toxicity


def deadline(toxic: Toxic, state: ToxicState) -> float | None:
    """Loop time at which a time-driven toxic fires, or ``None``."""
    ms = toxic.attributes.get("timeout", 0)
    if toxic.type == "timeout":
        return state.started + ms / 1000 if ms > 0 else None
    if toxic.type == "reset_peer" and state.triggered is not None:
        return state.triggered + ms / 1000
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
        delay += st.rng.uniform(-jitter, jitter)
    # Relative to when the chunk was read, so back-to-back chunks do not add up.
    await _sleep_until(ts + max(0.0, delay) / 1000)
    return await emit(data, _now())


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


async def _slicer(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    average = toxic.attributes["average_size"]
    if average <= 0:
        return await emit(data, ts)
    variation = min(toxic.attributes["size_variation"], average - 1)
    delay = toxic.attributes["delay"] / 1_000_000
    pos = 0
    while pos < len(data):
        size = average + (st.rng.randint(-variation, variation) if variation > 0 else 0)
        piece, pos = data[pos : pos + size], pos + size
        if await emit(piece, ts):
            return True
        if pos < len(data) and delay > 0:
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
    """``timeout`` and ``reset_peer`` swallow data; their deadline closes the connection."""
    if toxic.type == "reset_peer" and st.triggered is None:
        st.triggered = _now()
    return False


async def _passthrough(toxic: Toxic, st: ToxicState, data: bytes, ts: float, emit: Emit) -> bool:
    """``slow_close`` only acts at end of stream (see ``close_delay``)."""
    return await emit(data, ts)


BEHAVIOURS: dict[str, Behaviour] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slicer": _slicer,
    "limit_data": _limit_data,
    "timeout": _drop,
    "reset_peer": _drop,
    "slow_close": _passthrough,
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
    return sum(t.attributes["delay"] for t, _ in chain if t.type == "slow_close") / 1000
