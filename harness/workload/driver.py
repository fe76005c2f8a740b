"""The open-loop driver: start every operation at its intended time, whatever came before.

A closed loop (send, wait for the answer, send the next) slows down with the
system under test and so hides its stalls (coordinated omission). Here each
operation is launched at ``start + offset`` without waiting for earlier ones;
its latency is recorded twice: from the intended start (``corrected``: what a
user arriving at that moment would see) and from the actual launch (``raw``).

The driver watches itself: it measures its event loop's lag (by how late its
own launches wake up at rates of one per tick or more, with a ticker task at
lower rates and during the drain), counts late launches and launches held
back by the in-flight cap, and marks the run invalid when the generator, not
the system, was the bottleneck.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from harness.history import History, Op
from harness.metrics import LatencyRecorder
from harness.workload.schedule import Schedule

__all__ = [
    "DEFAULT_LAG_THRESHOLD_MS",
    "MIN_RATE_RATIO",
    "GeneratorReport",
    "OpFailed",
    "OpenLoopLatency",
    "run_open_loop",
]

logger = logging.getLogger(__name__)

DEFAULT_LAG_THRESHOLD_MS: Final = 50.0
"""A p99 event-loop lag above this makes the run invalid."""
MIN_RATE_RATIO: Final = 0.95
"""An achieved launch rate below this share of the planned one makes the run invalid."""


class OpFailed(Exception):
    """Raised by an operation that definitely did not happen (recorded as ``fail``).

    Any other exception is recorded as ``info``: the operation may have happened.
    """

    def __init__(self, reason: str, value: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


@dataclass(frozen=True, slots=True)
class OpenLoopLatency:
    """The two latency histograms of an open-loop run (ms)."""

    corrected: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("corrected"))
    """Completion minus intended start: coordinated-omission free; the figure to judge."""
    raw: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("raw"))
    """Completion minus actual launch: what a closed-loop tool would have reported."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratorReport:
    """How well the generator kept to its schedule, and whether the run is valid."""

    planned: int
    """Operations in the schedule."""
    launched: int
    """Operations started (the rest were past the deadline)."""
    completed: int
    """Operations that returned or raised before the deadline (ok + failed + indeterminate)."""
    ok: int
    """Completed ``ok``."""
    failed: int
    """Completed ``fail`` (raised :class:`OpFailed`)."""
    indeterminate: int
    """Completed ``info`` (timeout or another exception)."""
    cancelled: int
    """Still running at the deadline: cancelled and recorded as ``info``."""
    planned_rate_per_s: float
    """The schedule's rate."""
    achieved_rate_per_s: float
    """Launches per second over ``max(schedule duration, time of the last launch)``."""
    max_lag_ms: float
    """Largest event-loop lag seen by the ticker."""
    p99_lag_ms: float
    """99th percentile of the event-loop lag."""
    late_starts: int
    """Launches more than ``late_start_threshold_ms`` after their intended time."""
    late_start_threshold_ms: float
    """See ``late_starts``."""
    max_in_flight: int
    """The concurrency cap."""
    peak_in_flight: int
    """Most operations running at once."""
    cap_hits: int
    """Launches that had to wait for a free slot under the cap."""
    lag_threshold_ms: float
    """The p99 lag above which the run is invalid."""
    elapsed_s: float
    """From the start to the end of the drain."""
    valid: bool
    """False when the generator was the bottleneck (see ``invalid_reason``)."""
    invalid_reason: str | None
    """Why the run is invalid, ``None`` when valid."""
    latency: OpenLoopLatency = field(compare=False, repr=False)
    """The histograms (not part of :meth:`to_dict`; reports encode them separately)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the histograms."""
        return {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name != "latency"
        }


@dataclass
class _Tally:
    ok: int = 0
    failed: int = 0
    indeterminate: int = 0
    cancelled: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


async def _tick(interval_s: float, lag: LatencyRecorder, deadline: float) -> None:
    # Sleep one interval at a time; how late each wake-up is = event-loop lag.
    loop = asyncio.get_running_loop()
    expected = loop.time() + interval_s
    while expected < deadline:
        await asyncio.sleep(max(0.0, expected - loop.time()))
        now = loop.time()
        lag.record(max(0.0, now - expected) * 1000.0)
        expected = now + interval_s


async def run_open_loop(
    schedule: Schedule,
    op: Callable[[int], Awaitable[Any]],
    *,
    history: History,
    max_in_flight: int,
    deadline_s: float,
    f: str = "op",
    process: str = "generator",
    describe: Callable[[int], Any] | None = None,
    latency: OpenLoopLatency | None = None,
    lag_threshold_ms: float = DEFAULT_LAG_THRESHOLD_MS,
    late_start_threshold_ms: float = 10.0,
    tick_interval_ms: float = 5.0,
) -> GeneratorReport:
    """Run ``op(i)`` for each operation ``i`` of ``schedule`` at its intended time.

    - ``op`` returns a result (``ok``), raises :class:`OpFailed` (``fail``) or
      anything else (``info``: may have happened). Each operation is recorded in
      ``history`` as ``invoke`` (value ``describe(i)``, default ``{"i": i}``,
      with ``intended_mono_s``) and its completion, stamped with the loop clock.
    - At most ``max_in_flight`` operations run at once; a launch that finds the
      cap full waits for a slot, is counted in ``cap_hits`` and makes the run
      invalid (the schedule was not kept).
    - ``deadline_s`` (from the start) bounds the whole run: no launch after it,
      and operations still running then are cancelled and recorded ``info``.
    - Latencies of every completion (also failures, timeouts and cancellations,
      as lower bounds) go to ``latency.corrected`` (from the intended start)
      and ``latency.raw`` (from the launch).
    - The event loop's lag: how late each launch woke up when the schedule
      launches at least once per ``tick_interval_ms``, else (and during the
      drain) a ticker's wake-ups every ``tick_interval_ms``.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    if not deadline_s > 0:
        raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
    if not tick_interval_ms > 0:
        raise ValueError(f"tick_interval_ms must be > 0, got {tick_interval_ms}")
    loop = asyncio.get_running_loop()
    latency = latency if latency is not None else OpenLoopLatency()
    describe = describe if describe is not None else (lambda i: {"i": i})
    lag = LatencyRecorder("event_loop_lag")
    tally = _Tally()
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    # Launched and not yet completed: (invoke, intended, started) by op index.
    running: dict[int, tuple[Op, float, float]] = {}
    t0 = loop.time()
    deadline = t0 + deadline_s
    launched = late_starts = cap_hits = 0
    last_launch = t0

    def finish(i: int) -> None:
        _, intended, started = running.pop(i)
        end = loop.time()
        latency.corrected.record((end - intended) * 1000.0)
        latency.raw.record((end - started) * 1000.0)
        tally.in_flight -= 1
        slots.release()

    async def one(i: int, invoke: Op) -> None:
        try:
            result = await op(i)
        except OpFailed as exc:
            tally.failed += 1
            history.fail(invoke, exc.reason, exc.value, mono_s=loop.time())
        except asyncio.CancelledError:
            tally.cancelled += 1
            history.info(invoke, "cancelled at the deadline", mono_s=loop.time())
            raise
        except Exception as exc:
            tally.indeterminate += 1
            error = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            history.info(invoke, error, mono_s=loop.time())
        else:
            tally.ok += 1
            history.ok(invoke, result, mono_s=loop.time())
        finally:
            finish(i)

    tick_s = tick_interval_ms / 1000.0
    # At a rate of one launch per tick or more, the launches' own wake-ups
    # measure the loop's lag (how late each came, against when it was due):
    # a ticker would only add wake-ups, each costing as much CPU as a request
    # on a virtual machine. It then watches the drain alone.
    launches_sample = schedule.planned_rate_per_s * tick_s >= 1.0
    ticker = None if launches_sample else loop.create_task(_tick(tick_s, lag, deadline))
    try:
        for i, offset in enumerate(schedule.offsets_s):
            intended = t0 + offset
            if intended >= deadline:
                break
            now = loop.time()
            delay = intended - now
            # Behind schedule: still yield once, so running operations progress.
            await asyncio.sleep(max(0.0, delay))
            if launches_sample:
                lag.record(max(0.0, loop.time() - now - max(0.0, delay)) * 1000.0)
            if slots.locked():
                cap_hits += 1
                try:
                    async with asyncio.timeout_at(deadline):
                        await slots.acquire()
                except TimeoutError:
                    break
            else:
                await slots.acquire()
            started = loop.time()
            if (started - intended) * 1000.0 > late_start_threshold_ms:
                late_starts += 1
            invoke = history.invoke(
                process, f, describe(i), intended_mono_s=intended, mono_s=started
            )
            tally.in_flight += 1
            tally.peak_in_flight = max(tally.peak_in_flight, tally.in_flight)
            running[i] = (invoke, intended, started)
            task = loop.create_task(one(i, invoke))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            launched += 1
            last_launch = started
        if ticker is None:
            ticker = loop.create_task(_tick(tick_s, lag, deadline))
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=max(0.0, deadline - loop.time()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        if ticker is not None:
            ticker.cancel()
        for task in list(tasks):  # only when the driver itself is cancelled
            task.cancel()
        await asyncio.gather(
            *(t for t in (ticker,) if t is not None), *tasks, return_exceptions=True
        )
        # A task cancelled before its first step never ran its own bookkeeping.
        for i, (invoke, _, _) in sorted(running.items()):
            tally.cancelled += 1
            history.info(invoke, "cancelled at the deadline", mono_s=loop.time())
            finish(i)
    elapsed = loop.time() - t0

    window = max(schedule.duration_s, last_launch - t0)
    achieved = launched / window if window > 0 and launched else 0.0
    planned_rate = schedule.planned_rate_per_s
    p99_lag = lag.percentile(99) or 0.0
    reasons: list[str] = []
    if len(schedule) and achieved < MIN_RATE_RATIO * planned_rate:
        reasons.append(
            f"achieved launch rate {achieved:.1f}/s is below {MIN_RATE_RATIO:.0%} "
            f"of the planned {planned_rate:.1f}/s"
        )
    if p99_lag > lag_threshold_ms:
        reasons.append(f"event-loop lag p99 {p99_lag:.1f} ms > {lag_threshold_ms:g} ms")
    if cap_hits:
        reasons.append(f"in-flight cap of {max_in_flight} was hit {cap_hits} time(s)")
    if reasons:
        logger.warning("generator was the bottleneck: %s", "; ".join(reasons))
    return GeneratorReport(
        planned=len(schedule),
        launched=launched,
        completed=tally.ok + tally.failed + tally.indeterminate,
        ok=tally.ok,
        failed=tally.failed,
        indeterminate=tally.indeterminate,
        cancelled=tally.cancelled,
        planned_rate_per_s=planned_rate,
        achieved_rate_per_s=achieved,
        max_lag_ms=lag.max_ms or 0.0,
        p99_lag_ms=p99_lag,
        late_starts=late_starts,
        late_start_threshold_ms=late_start_threshold_ms,
        max_in_flight=max_in_flight,
        peak_in_flight=tally.peak_in_flight,
        cap_hits=cap_hits,
        lag_threshold_ms=lag_threshold_ms,
        elapsed_s=elapsed,
        valid=not reasons,
        invalid_reason="; ".join(reasons) or None,
        latency=latency,
    )
