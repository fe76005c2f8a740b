"""Fault packages: a fault, its start and heal, and a label for the report (Jepsen's nemesis).

    async with latency(tp, "app", ms=200, jitter_ms=50):
        ...                               # the app hop is slow in here

    await partition(tp, "postgres", for_s=3).run()   # start, hold 3 s, heal

    await run_schedule([At(5, partition(tp, "postgres", for_s=3)),
                        At(10, reset_peers(tp, "redis", for_s=1))])

A package works through a Toxiproxy API client (``ToxiproxyClient``) against
any server, real or embedded. Heal is idempotent and tolerates a server that
was already reset. Every start and heal is recorded as a ``FaultEvent``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from harness.faults.client import NotFoundError, ToxiproxyClient

__all__ = [
    "At",
    "Fault",
    "FaultEvent",
    "InvalidFaultError",
    "bandwidth",
    "down",
    "latency",
    "limit_data",
    "packet_loss",
    "partition",
    "reset_peers",
    "run_schedule",
    "slicer",
    "slow_close",
    "timeout",
]

logger = logging.getLogger(__name__)

Streams = Literal["upstream", "downstream", "both"]
_SERIALS = itertools.count(1)


class InvalidFaultError(ValueError):
    """A fault package was given an argument out of range."""


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One transition of a fault, for the history and the report's shading."""

    label: str
    """Human label, e.g. ``latency app 200±50 ms``."""
    kind: str
    """Package name (``partition``, ``latency``...): how the report shades the interval."""
    proxy: str
    phase: Literal["start", "heal"]
    at_s: float
    """``time.monotonic()`` when the transition completed."""


@dataclass(frozen=True, slots=True)
class _ToxicPlan:
    type: str
    stream: Literal["upstream", "downstream"]
    attributes: dict[str, Any]
    toxicity: float = 1.0


@dataclass
class Fault:
    """A fault on one proxy: toxics to add (or the proxy to disable), healed on exit."""

    client: ToxiproxyClient
    proxy: str
    kind: str
    label: str
    toxics: tuple[_ToxicPlan, ...] = ()
    disable: bool = False
    for_s: float | None = None
    on_event: Callable[[FaultEvent], None] | None = None
    events: list[FaultEvent] = field(default_factory=list)
    _active: list[str] = field(default_factory=list)
    _serial: int = field(default_factory=lambda: next(_SERIALS))

    def _record(self, phase: Literal["start", "heal"]) -> None:
        event = FaultEvent(self.label, self.kind, self.proxy, phase, time.monotonic())
        self.events.append(event)
        logger.info("fault %s: %s", phase, self.label)
        if self.on_event is not None:
            self.on_event(event)

    def _toxic_name(self, plan: _ToxicPlan) -> str:
        # Unique per package instance, so two overlapping faults never collide.
        return f"alertbench_{self.kind}_{self._serial}_{plan.stream}"

    async def start(self) -> None:
        """Install the fault."""
        if self.disable:
            await self.client.disable(self.proxy)
        for plan in self.toxics:
            name = self._toxic_name(plan)
            await self.client.add_toxic(
                self.proxy,
                plan.type,
                name=name,
                stream=plan.stream,
                toxicity=plan.toxicity,
                attributes=plan.attributes,
            )
            self._active.append(name)
        self._record("start")

    async def heal(self) -> None:
        """Remove the fault; harmless if it is not (or no longer) installed."""
        while self._active:
            name = self._active.pop()
            try:
                await self.client.remove_toxic(self.proxy, name)
            except NotFoundError:
                logger.debug("toxic %s already gone from %s", name, self.proxy)
        if self.disable:
            await self.client.enable(self.proxy)
        self._record("heal")

    async def run(self) -> None:
        """Start, hold for ``for_s`` seconds, heal (also when cancelled)."""
        if self.for_s is None:
            raise InvalidFaultError(f"{self.label}: run() needs for_s")
        await self.start()
        try:
            await asyncio.sleep(self.for_s)
        finally:
            await asyncio.shield(self.heal())

    async def __aenter__(self) -> Fault:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.heal())


def _streams(stream: Streams) -> tuple[Literal["upstream", "downstream"], ...]:
    if stream == "both":
        return ("upstream", "downstream")
    if stream not in ("upstream", "downstream"):
        raise InvalidFaultError(f"stream must be upstream, downstream or both, got {stream!r}")
    return (stream,)


def _check(name: str, value: float, *, low: float = 0, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidFaultError(f"{name} must be {bound}, got {value!r}")


def _fault(
    client: ToxiproxyClient,
    proxy: str,
    kind: str,
    label: str,
    plans: Sequence[_ToxicPlan] = (),
    *,
    for_s: float | None,
    disable: bool = False,
) -> Fault:
    if for_s is not None:
        _check("for_s", for_s)
    return Fault(client, proxy, kind, label, tuple(plans), disable, for_s)


def partition(client: ToxiproxyClient, proxy: str, *, for_s: float | None = None) -> Fault:
    """Black-hole the hop both ways: bytes vanish, connections stay open and hang.

    Healing removes the blackhole, which (as in Toxiproxy) closes the
    connections that were held, so clients must reconnect.
    """
    plans = [_ToxicPlan("timeout", s, {"timeout": 0}) for s in _streams("both")]
    return _fault(client, proxy, "partition", f"partition {proxy}", plans, for_s=for_s)


def down(client: ToxiproxyClient, proxy: str, *, for_s: float | None = None) -> Fault:
    """Take the hop down: open connections are dropped, new ones refused."""
    return _fault(client, proxy, "down", f"down {proxy}", for_s=for_s, disable=True)


def latency(
    client: ToxiproxyClient,
    proxy: str,
    *,
    ms: int,
    jitter_ms: int = 0,
    stream: Streams = "downstream",
    toxicity: float = 1.0,
    for_s: float | None = None,
) -> Fault:
    """Delay every chunk by ``ms`` ± ``jitter_ms`` (per direction in ``stream``)."""
    _check("ms", ms)
    _check("jitter_ms", jitter_ms)
    _check("toxicity", toxicity, high=1)
    attrs = {"latency": ms, "jitter": jitter_ms}
    plans = [_ToxicPlan("latency", s, attrs, toxicity) for s in _streams(stream)]
    label = f"latency {proxy} {ms}±{jitter_ms} ms"
    return _fault(client, proxy, "latency", label, plans, for_s=for_s)


def bandwidth(
    client: ToxiproxyClient,
    proxy: str,
    *,
    kb_per_s: int,
    stream: Streams = "downstream",
    for_s: float | None = None,
) -> Fault:
    """Cap throughput at ``kb_per_s`` kilobytes (1000 bytes) per second."""
    _check("kb_per_s", kb_per_s)
    plans = [_ToxicPlan("bandwidth", s, {"rate": kb_per_s}) for s in _streams(stream)]
    label = f"bandwidth {proxy} {kb_per_s} KB/s"
    return _fault(client, proxy, "bandwidth", label, plans, for_s=for_s)


def reset_peers(
    client: ToxiproxyClient, proxy: str, *, after_ms: int = 0, for_s: float | None = None
) -> Fault:
    """Reset (TCP RST) each connection ``after_ms`` after its next traffic."""
    _check("after_ms", after_ms)
    plans = [_ToxicPlan("reset_peer", "downstream", {"timeout": after_ms})]
    return _fault(client, proxy, "reset_peers", f"reset peers {proxy}", plans, for_s=for_s)


def timeout(
    client: ToxiproxyClient, proxy: str, *, timeout_ms: int, for_s: float | None = None
) -> Fault:
    """Swallow data both ways and close connections after ``timeout_ms`` of it (0: never)."""
    _check("timeout_ms", timeout_ms)
    plans = [_ToxicPlan("timeout", s, {"timeout": timeout_ms}) for s in _streams("both")]
    label = f"timeout {proxy} {timeout_ms} ms"
    return _fault(client, proxy, "timeout", label, plans, for_s=for_s)


def slow_close(
    client: ToxiproxyClient, proxy: str, *, delay_ms: int, for_s: float | None = None
) -> Fault:
    """Delay the close of connections by ``delay_ms``."""
    _check("delay_ms", delay_ms)
    plans = [_ToxicPlan("slow_close", "downstream", {"delay": delay_ms})]
    label = f"slow close {proxy} {delay_ms} ms"
    return _fault(client, proxy, "slow_close", label, plans, for_s=for_s)


def slicer(
    client: ToxiproxyClient,
    proxy: str,
    *,
    average_size: int,
    size_variation: int = 0,
    delay_us: int = 0,
    stream: Streams = "downstream",
    for_s: float | None = None,
) -> Fault:
    """Cut the stream into small writes (``delay_us`` microseconds apart)."""
    _check("average_size", average_size, low=1)
    _check("size_variation", size_variation)
    _check("delay_us", delay_us)
    attrs = {"average_size": average_size, "size_variation": size_variation, "delay": delay_us}
    plans = [_ToxicPlan("slicer", s, attrs) for s in _streams(stream)]
    return _fault(client, proxy, "slicer", f"slicer {proxy}", plans, for_s=for_s)


def limit_data(
    client: ToxiproxyClient,
    proxy: str,
    *,
    bytes: int,
    stream: Streams = "downstream",
    for_s: float | None = None,
) -> Fault:
    """Close each connection after ``bytes`` bytes in ``stream``."""
    _check("bytes", bytes)
    plans = [_ToxicPlan("limit_data", s, {"bytes": bytes}) for s in _streams(stream)]
    return _fault(client, proxy, "limit_data", f"limit {proxy} {bytes} B", plans, for_s=for_s)


def packet_loss(
    client: ToxiproxyClient,
    proxy: str,
    *,
    loss_rate: float,
    correlation: float = 0.0,
    stream: Streams = "both",
    for_s: float | None = None,
) -> Fault:
    """Drop chunks at random (embedded server only: not a Toxiproxy toxic).

    TCP does not retransmit what the proxy drops, so this corrupts the stream
    (missing bytes) rather than merely slowing it.
    """
    _check("loss_rate", loss_rate, high=1)
    _check("correlation", correlation, high=1)
    attrs = {"loss_rate": loss_rate, "correlation": correlation}
    plans = [_ToxicPlan("packet_loss", s, attrs) for s in _streams(stream)]
    label = f"packet loss {proxy} {loss_rate:.0%}"
    return _fault(client, proxy, "packet_loss", label, plans, for_s=for_s)


@dataclass(frozen=True, slots=True)
class At:
    """A fault scheduled ``offset_s`` seconds after the schedule starts."""

    offset_s: float
    fault: Fault


async def run_schedule(steps: Sequence[At]) -> list[FaultEvent]:
    """Run each fault at its offset for its ``for_s``; heal everything, also on error.

    Faults may overlap. Returns every start/heal event in time order.
    """
    for step in steps:
        _check("offset_s", step.offset_s)
        if step.fault.for_s is None:
            raise InvalidFaultError(f"{step.fault.label}: a scheduled fault needs for_s")
    origin = asyncio.get_running_loop().time()

    async def one(step: At) -> None:
        delay = origin + step.offset_s - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        await step.fault.run()

    async with asyncio.TaskGroup() as group:
        for step in steps:
            group.create_task(one(step))
    return sorted((e for s in steps for e in s.fault.events), key=lambda e: e.at_s)
