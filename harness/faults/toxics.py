"""Toxic implementations: what each Toxiproxy toxic does to a stream of chunks.

A toxic is a coroutine (``pipe``) that reads chunks from its stage, and sends,
delays, drops or closes. The attribute names, units and defaults are those of
Toxiproxy 2.x (every attribute defaults to zero, times are in milliseconds
unless the name says otherwise). Validation is stricter than Toxiproxy's:
attributes that make no sense (a negative rate, a slicer with ``average_size``
of 0, which would loop forever in Toxiproxy) are rejected with a 400.

``packet_loss`` and ``corrupt`` are alertbench extensions; a real Toxiproxy
answers ``invalid toxic type`` for them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "TOXIC_TYPES",
    "AttributeSpec",
    "Chunk",
    "InvalidAttributeError",
    "StageContext",
    "Toxic",
    "ToxicType",
    "slice_sizes",
]


@dataclass(slots=True)
class Chunk:
    """Bytes read from one socket, with the loop time they became due."""

    data: bytes
    """The payload."""
    ts: float
    """``loop.time()`` at which the chunk entered the proxy (or left the last delay)."""


class StageContext(Protocol):
    """What a toxic sees of the pipeline stage it runs in (implemented by ``link.Stage``)."""

    rng: random.Random
    held: Chunk | None
    state: dict[str, Any]

    async def recv(self) -> Chunk | None:
        """Next chunk, or None at end of stream. The chunk becomes ``held``."""
        ...

    def send(self, chunk: Chunk) -> None:
        """Pass a chunk to the next stage; clears ``held``."""
        ...

    def close(self) -> None:
        """End the stream here: EOF goes downstream, later input is dropped."""
        ...

    def reset(self) -> None:
        """Abort the whole connection with a TCP RST on both sides."""
        ...

    def now(self) -> float:
        """The event loop's clock, in seconds."""
        ...


class InvalidAttributeError(ValueError):
    """An attribute value is out of range or of the wrong type."""


_INT64_MAX = 2**63 - 1  # Toxiproxy's attributes are Go int64s


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One toxic attribute: JSON name, numeric kind and allowed range."""

    name: str
    kind: type[int] | type[float] = int
    minimum: float = 0
    maximum: float | None = None

    def coerce(self, value: Any) -> int | float:
        """Check a JSON value and return it as ``kind``; raise InvalidAttributeError otherwise."""
        # bool is an int in Python but not a number in JSON.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidAttributeError(f"{self.name} must be a number, got {value!r}")
        if self.kind is int and not isinstance(value, int):
            raise InvalidAttributeError(f"{self.name} must be an integer, got {value!r}")
        if value < self.minimum:
            raise InvalidAttributeError(f"{self.name} must be >= {self.minimum:g}, got {value!r}")
        maximum = self.maximum if self.maximum is not None else _INT64_MAX
        if value > maximum:
            raise InvalidAttributeError(f"{self.name} must be <= {maximum:g}, got {value!r}")
        return self.kind(value)


Pipe = Callable[[Mapping[str, Any], StageContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToxicType:
    """A registered toxic: its attributes and its pipe coroutine."""

    name: str
    attributes: tuple[AttributeSpec, ...]
    pipe: Pipe
    cleanup_closes: bool = False
    """Removing the toxic closes the stream (Toxiproxy's timeout toxic does this)."""
    defaults: dict[str, int | float] = field(default_factory=dict)

    def parse(self, raw: Any, base: Mapping[str, Any] | None = None) -> dict[str, int | float]:
        """Merge a JSON ``attributes`` object over ``base`` (or the defaults) and validate.

        Unknown keys are ignored and null means "keep", as in Toxiproxy.
        """
        if raw is not None and not isinstance(raw, dict):
            raise InvalidAttributeError("attributes must be a JSON object")
        merged: dict[str, int | float] = {spec.name: spec.kind(0) for spec in self.attributes}
        merged.update(self.defaults)
        if base is not None:
            merged.update({k: v for k, v in base.items() if k in merged})
        for spec in self.attributes:
            value = (raw or {}).get(spec.name)
            if value is not None:
                merged[spec.name] = spec.coerce(value)
        if self.name == "slicer" and merged["average_size"] < 1:
            raise InvalidAttributeError("average_size must be >= 1")
        return merged


async def _sleep_until(ctx: StageContext, due: float) -> None:
    delay = due - ctx.now()
    if delay > 0:
        await asyncio.sleep(delay)


async def _noop(_attrs: Mapping[str, Any], ctx: StageContext) -> None:
    while (chunk := await ctx.recv()) is not None:
        ctx.send(chunk)
    ctx.close()


async def _latency(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    latency_ms, jitter_ms = int(attrs["latency"]), int(attrs["jitter"])
    while (chunk := await ctx.recv()) is not None:
        delay_ms = latency_ms
        if jitter_ms > 0:
            delay_ms += ctx.rng.randrange(-jitter_ms, jitter_ms)
        # Delay relative to arrival, so latency does not also cap throughput,
        # and chained latency toxics add up.
        due = chunk.ts + max(delay_ms, 0) / 1000
        await _sleep_until(ctx, due)
        chunk.ts = max(due, chunk.ts)
        ctx.send(chunk)
    ctx.close()


_BANDWIDTH_IDLE_S = 0.02


async def _bandwidth(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    rate_kb_s = int(attrs["rate"])
    if rate_kb_s == 0:
        # Toxiproxy lets nothing through at rate 0; hold until interrupted.
        await asyncio.Event().wait()
    bytes_per_s = rate_kb_s * 1000  # Toxiproxy's KB is 1000 bytes.
    piece = max(1, bytes_per_s // 100)  # 10 ms worth of data per write
    next_due = ctx.now()
    while (chunk := await ctx.recv()) is not None:
        data, offset = chunk.data, 0
        try:
            while offset < len(data):
                part = data[offset : offset + piece]
                # Timer overshoot is absorbed by the schedule; a real pause
                # earns no credit, so a burst after idling is still paced.
                now = ctx.now()
                if now - next_due > _BANDWIDTH_IDLE_S:
                    next_due = now
                next_due += len(part) / bytes_per_s
                await _sleep_until(ctx, next_due)
                offset += len(part)
                ctx.send(Chunk(part, chunk.ts))
                ctx.held = None
        except asyncio.CancelledError:
            ctx.held = Chunk(data[offset:], chunk.ts) if offset < len(data) else None
            raise
    ctx.close()


async def _slow_close(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    while (chunk := await ctx.recv()) is not None:
        ctx.send(chunk)
    await asyncio.sleep(int(attrs["delay"]) / 1000)
    ctx.close()


async def _timeout(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    timeout_s = int(attrs["timeout"]) / 1000
    while True:
        try:
            # Like Toxiproxy, the timer restarts whenever data arrives.
            chunk = await asyncio.wait_for(ctx.recv(), timeout_s or None)
        except TimeoutError:
            break
        ctx.held = None  # dropped on the floor
        if chunk is None:
            break
    ctx.close()


async def _reset_peer(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    await ctx.recv()  # Toxiproxy waits for traffic (or EOF) before resetting.
    ctx.held = None
    await asyncio.sleep(int(attrs["timeout"]) / 1000)
    ctx.reset()


def slice_sizes(total: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Split ``total`` bytes into pieces of ``average`` +/- ``variation`` bytes.

    Every piece is at least 1 byte; the sizes sum to ``total``. O(total / average).
    """
    sizes: list[int] = []
    remaining = total
    while remaining > 0:
        size = average + (rng.randint(-variation, variation) if variation else 0)
        size = min(max(size, 1), remaining)
        sizes.append(size)
        remaining -= size
    return sizes


async def _slicer(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    average, variation = int(attrs["average_size"]), int(attrs["size_variation"])
    delay_s = int(attrs["delay"]) / 1_000_000
    while (chunk := await ctx.recv()) is not None:
        offset = 0
        for size in slice_sizes(len(chunk.data), average, variation, ctx.rng):
            ctx.send(Chunk(chunk.data[offset : offset + size], chunk.ts))
            offset += size
            # If interrupted during the delay, the rest is forwarded unsliced.
            ctx.held = Chunk(chunk.data[offset:], chunk.ts) if offset < len(chunk.data) else None
            if delay_s:
                await asyncio.sleep(delay_s)
    ctx.close()


async def _limit_data(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    limit = int(attrs["bytes"])
    sent = ctx.state.setdefault("bytes_transmitted", 0)
    while sent < limit:
        chunk = await ctx.recv()
        if chunk is None:
            break
        chunk.data = chunk.data[: limit - sent]
        sent += len(chunk.data)
        ctx.state["bytes_transmitted"] = sent
        ctx.send(chunk)
    ctx.held = None
    ctx.close()


async def _packet_loss(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    loss, correlation = float(attrs["loss_rate"]), float(attrs["correlation"])
    dropped = False
    while (chunk := await ctx.recv()) is not None:
        probability = min(1.0, loss + correlation) if dropped else loss
        dropped = ctx.rng.random() < probability
        if dropped:
            ctx.held = None
        else:
            ctx.send(chunk)
    ctx.close()


async def _corrupt(attrs: Mapping[str, Any], ctx: StageContext) -> None:
    probability = float(attrs["probability"])
    while (chunk := await ctx.recv()) is not None:
        data = bytearray(chunk.data)
        for i in range(len(data)):
            if ctx.rng.random() < probability:
                data[i] ^= 1 << ctx.rng.randrange(8)
        chunk.data = bytes(data)
        ctx.send(chunk)
    ctx.close()


def _spec(name: str, *attrs: AttributeSpec, pipe: Pipe, cleanup_closes: bool = False) -> ToxicType:
    return ToxicType(name, attrs, pipe, cleanup_closes)


TOXIC_TYPES: dict[str, ToxicType] = {
    t.name: t
    for t in (
        _spec("noop", pipe=_noop),
        _spec("latency", AttributeSpec("latency"), AttributeSpec("jitter"), pipe=_latency),
        _spec("bandwidth", AttributeSpec("rate"), pipe=_bandwidth),
        _spec("slow_close", AttributeSpec("delay"), pipe=_slow_close),
        _spec("timeout", AttributeSpec("timeout"), pipe=_timeout, cleanup_closes=True),
        _spec("reset_peer", AttributeSpec("timeout"), pipe=_reset_peer),
        _spec(
            "slicer",
            AttributeSpec("average_size"),
            AttributeSpec("size_variation"),
            AttributeSpec("delay"),
            pipe=_slicer,
        ),
        _spec("limit_data", AttributeSpec("bytes"), pipe=_limit_data),
        _spec(
            "packet_loss",
            AttributeSpec("loss_rate", float, 0, 1),
            AttributeSpec("correlation", float, 0, 1),
            pipe=_packet_loss,
        ),
        _spec("corrupt", AttributeSpec("probability", float, 0, 1), pipe=_corrupt),
    )
}
"""Every toxic type the embedded server accepts, by Toxiproxy type name."""


@dataclass(slots=True)
class Toxic:
    """A toxic as configured on a proxy (the API's toxic object)."""

    name: str
    kind: ToxicType
    stream: str
    """``upstream`` (client -> server) or ``downstream`` (server -> client)."""
    toxicity: float
    """Probability that the toxic applies to a connection, rolled per connection."""
    attributes: dict[str, int | float]

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of Toxiproxy's toxic wrapper."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.kind.name,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }
