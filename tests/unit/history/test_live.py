"""The live status line read incrementally from a growing history."""

from __future__ import annotations

import asyncio

from harness.history import History
from harness.live import LiveStatus, LiveTracker, live_status


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_counts_rate_p99_and_in_flight_over_each_interval() -> None:
    clock = Clock()
    h = History(mono_clock=clock, wall_clock=lambda: 0.0)
    tracker = LiveTracker(h, clock=clock)
    ops = [h.invoke("c", "complete", {"i": i}) for i in range(5)]
    clock.t = 0.5
    for op in ops[:3]:
        h.ok(op)  # 500 ms each
    h.fail(ops[3], "409")
    h.receive("c", user_id=1, event="new_alert", alert_id=1, project_id=1)
    clock.t = 1.0
    first = tracker.poll()
    assert (first.ok, first.fail, first.info, first.in_flight) == (3, 1, 0, 1)
    assert first.receipts == 1
    assert first.rate_per_s == 4.0
    assert first.p99_ms == 500.0
    clock.t = 3.0
    h.info(ops[4], "timeout")  # 3000 ms
    second = tracker.poll()  # only what is new since the first poll
    assert (second.ok, second.info, second.in_flight) == (3, 1, 0)
    assert second.rate_per_s == 0.5
    assert second.p99_ms == 3000.0
    assert "ok 3  fail 1  info 1" in second.line("load")
    idle = tracker.poll()
    assert idle.p99_ms is None
    assert "p99 n/a" in idle.line("load")


async def test_the_display_is_called_while_the_block_runs_and_not_after() -> None:
    h = History()
    seen: list[LiveStatus] = []
    called = asyncio.Event()

    def show(status: LiveStatus) -> None:
        seen.append(status)
        called.set()

    async with live_status(h, show, interval_s=0.01):
        h.ok(h.invoke("c", "complete", {}))
        async with asyncio.timeout(5):
            await called.wait()
    count = len(seen)
    for _ in range(10):  # the loop gets turns; the stopped display gets none
        await asyncio.sleep(0)
    assert len(seen) == count
    assert seen[-1].ok == 1
    async with live_status(h, None):  # no display: nothing runs
        pass
