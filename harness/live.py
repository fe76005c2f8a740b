"""A live status line of a running scenario, read from its history.

Every ``interval_s`` the tracker reads the events appended since its last
look (O(new events)) and says: elapsed time, operations ok / fail / info,
the completion rate and the p99 latency over the last interval, operations
in flight, client receipts and faults. The CLI shows it with rich's live
display on a terminal, and as a plain line every few seconds elsewhere (CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from harness.history import FaultMark, History, Op, Receive

__all__ = ["LiveStatus", "LiveTracker", "live_status"]


@dataclass(frozen=True)
class LiveStatus:
    """What the run has done so far, and over the last interval."""

    elapsed_s: float
    ok: int
    fail: int
    info: int
    in_flight: int
    receipts: int
    faults: int
    rate_per_s: float
    """Operations completed per second over the last interval."""
    p99_ms: float | None
    """p99 latency (from the intended start) of those operations."""
    interval_s: float = 1.0
    """The last interval's length."""

    def line(self, name: str) -> str:
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.0f} ms"
        return (
            f"{name}: {self.elapsed_s:5.1f} s in  ok {self.ok}  fail {self.fail}  info {self.info}"
            f"  in flight {self.in_flight}  receipts {self.receipts}  faults {self.faults}"
            f"  | last {self.interval_s:.0f} s: {self.rate_per_s:.0f}/s, p99 {p99}"
        )


@dataclass
class LiveTracker:
    """Incremental counts over a growing history."""

    history: History
    clock: Callable[[], float] = time.monotonic
    _seen: int = 0
    _started: float = field(default=0.0)
    _last: float = field(default=0.0)
    _open: dict[int, float] = field(default_factory=dict)
    _counts: dict[str, int] = field(
        default_factory=lambda: {"ok": 0, "fail": 0, "info": 0, "receipts": 0, "faults": 0}
    )

    def __post_init__(self) -> None:
        self._started = self._last = self.clock()

    def poll(self) -> LiveStatus:
        now = self.clock()
        new = self.history[self._seen :]
        self._seen += len(new)
        latencies: list[float] = []
        for event in new:
            if isinstance(event, Op):
                if event.type == "invoke":
                    start = event.intended_mono_s
                    self._open[event.op_id] = event.mono_s if start is None else start
                    continue
                started = self._open.pop(event.op_id, None)
                self._counts[event.type] += 1
                if started is not None:
                    latencies.append((event.mono_s - started) * 1000)
            elif isinstance(event, Receive):
                self._counts["receipts"] += 1
            elif isinstance(event, FaultMark):
                self._counts["faults"] += 1
        interval = max(now - self._last, 1e-9)
        self._last = now
        p99 = None
        if latencies:
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
        return LiveStatus(
            elapsed_s=now - self._started,
            ok=self._counts["ok"],
            fail=self._counts["fail"],
            info=self._counts["info"],
            in_flight=len(self._open),
            receipts=self._counts["receipts"],
            faults=self._counts["faults"],
            rate_per_s=len(latencies) / interval,
            p99_ms=p99,
            interval_s=interval,
        )


@contextlib.asynccontextmanager
async def live_status(
    history: History,
    show: Callable[[LiveStatus], None] | None,
    *,
    interval_s: float = 1.0,
) -> AsyncIterator[None]:
    """Call ``show`` with the run's status every ``interval_s`` while the block runs."""
    if show is None:
        yield
        return
    tracker = LiveTracker(history)
    callback = show

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            callback(tracker.poll())

    task = asyncio.create_task(loop(), name="alertbench-live-status")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
