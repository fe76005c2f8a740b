"""The open-loop driver on a virtual clock: exact, deterministic, no real waiting."""

from __future__ import annotations

import asyncio

import pytest

from harness.history import History, Op, pair_operations
from harness.workload import (
    GeneratorReport,
    OpenLoopLatency,
    OpFailed,
    constant_rate,
    run_open_loop,
)
from harness.workload.testing import VirtualClockLoop, run_virtual


def virtual_history() -> History:
    loop = asyncio.get_running_loop()
    return History(mono_clock=loop.time, wall_clock=lambda: 0.0)


def test_every_operation_starts_exactly_on_schedule() -> None:
    async def main() -> tuple[GeneratorReport, History, float]:
        history = virtual_history()

        async def op(i: int) -> int:
            await asyncio.sleep(0.003)
            return i * 2

        t0 = asyncio.get_running_loop().time()
        report = await run_open_loop(
            constant_rate(100, 1.0), op, history=history, max_in_flight=10, deadline_s=5
        )
        return report, history, t0

    report, history, t0 = run_virtual(main())
    assert (report.planned, report.launched, report.completed, report.ok) == (100, 100, 100, 100)
    assert report.valid is True
    assert report.invalid_reason is None
    assert report.achieved_rate_per_s == pytest.approx(report.planned_rate_per_s)
    assert (report.late_starts, report.cap_hits, report.max_lag_ms) == (0, 0, 0.001)
    ops = pair_operations(history)
    assert [o.invoke.value for o in ops[:2]] == [{"i": 0}, {"i": 1}]
    assert [o.completion.value for o in ops[:2] if o.completion] == [0, 2]
    for i, o in enumerate(ops):
        assert o.invoke.intended_mono_s == pytest.approx(t0 + i * 0.01)
        assert o.invoke.mono_s == pytest.approx(o.invoke.intended_mono_s, abs=1e-6)
    assert report.latency.corrected.percentile(50) == pytest.approx(3.0, rel=1e-3)


def test_stalled_operations_do_not_delay_later_launches() -> None:
    """Coordinated omission: ops 0-9 hang until op 50 runs; everything else starts on time."""

    async def main() -> tuple[GeneratorReport, History, float]:
        history = virtual_history()
        release = asyncio.Event()

        async def op(i: int) -> str:
            if i < 10:
                await release.wait()
            if i == 50:
                release.set()
            return "done"

        t0 = asyncio.get_running_loop().time()
        report = await run_open_loop(
            constant_rate(100, 1.0), op, history=history, max_in_flight=50, deadline_s=5
        )
        return report, history, t0

    report, history, t0 = run_virtual(main())
    assert report.valid is True
    assert report.launched == report.completed == 100
    assert report.peak_in_flight == 11  # the 10 stalled ones plus one at a time
    ops = pair_operations(history)
    assert all(o.invoke.mono_s - o.start_mono_s < 1e-6 for o in ops)
    for i in range(10):
        # Started at i * 10 ms, released at 500 ms.
        assert ops[i].latency_ms == pytest.approx(500 - 10 * i)
        assert ops[i].completion is not None
        assert ops[i].completion.mono_s == pytest.approx(t0 + 0.5)
    corrected = report.latency.corrected
    assert corrected.max_ms == pytest.approx(500, rel=1e-3)
    assert corrected.count == 100


def test_a_blocked_loop_makes_corrected_latency_exceed_raw() -> None:
    async def main() -> tuple[GeneratorReport, History]:
        history = virtual_history()
        loop = asyncio.get_running_loop()

        async def op(i: int) -> None:
            if i == 20:
                loop.advance(0.205)  # a 205 ms synchronous stall of the whole loop

        report = await run_open_loop(
            constant_rate(100, 1.0), op, history=history, max_in_flight=10, deadline_s=5
        )
        return report, history

    report, history = run_virtual(main())
    ops = pair_operations(history)
    late = [o for o in ops if o.invoke.mono_s - o.start_mono_s > 0.010]
    assert [o.invoke.value["i"] for o in late] == list(range(21, 40))
    assert report.late_starts == 19
    # Op 21 was meant to start at 210 ms and started at 405 ms.
    assert ops[21].latency_ms == pytest.approx(195)
    assert ops[21].raw_latency_ms == pytest.approx(0)
    assert report.latency.corrected.max_ms == pytest.approx(205, rel=1e-2)
    assert report.latency.raw.max_ms == pytest.approx(205, rel=1e-2)  # op 20 itself
    assert report.max_lag_ms >= 190


def test_a_generator_that_cannot_keep_up_marks_the_run_invalid() -> None:
    async def main() -> GeneratorReport:
        loop = asyncio.get_running_loop()

        async def op(i: int) -> None:
            loop.advance(0.020)  # 20 ms of CPU per op at 100 ops/s: twice too much

        return await run_open_loop(
            constant_rate(100, 1.0), op, history=virtual_history(), max_in_flight=10, deadline_s=10
        )

    report = run_virtual(main())
    assert report.launched == 100
    assert report.valid is False
    assert report.achieved_rate_per_s == pytest.approx(50, rel=0.05)
    assert report.p99_lag_ms > 50
    assert report.invalid_reason is not None
    assert "below 95% of the planned 100.0/s" in report.invalid_reason
    assert "event-loop lag p99" in report.invalid_reason


def test_the_in_flight_cap_and_the_deadline_are_reported() -> None:
    async def main() -> tuple[GeneratorReport, History]:
        history = virtual_history()
        never = asyncio.Event()

        async def op(i: int) -> None:
            await never.wait()

        report = await run_open_loop(
            constant_rate(100, 1.0), op, history=history, max_in_flight=5, deadline_s=2
        )
        return report, history

    report, history = run_virtual(main())
    assert (report.launched, report.completed, report.cancelled) == (5, 0, 5)
    assert report.cap_hits == 1
    assert report.valid is False
    assert "in-flight cap of 5 was hit 1 time(s)" in (report.invalid_reason or "")
    infos = [e for e in history if isinstance(e, Op) and e.type == "info"]
    assert [e.error for e in infos] == ["cancelled at the deadline"] * 5
    assert history.open_operations() == []
    # Latency of a cancelled op is a lower bound: from its intended start to the deadline.
    assert report.latency.corrected.max_ms == pytest.approx(2000, rel=1e-3)


def test_outcomes_fail_info_and_ok_are_recorded() -> None:
    async def main() -> tuple[GeneratorReport, History]:
        history = virtual_history()

        async def op(i: int) -> str:
            if i % 4 == 1:
                raise OpFailed("409 stale", {"status": 409})
            if i % 4 == 2:
                raise TimeoutError
            if i % 4 == 3:
                raise ConnectionResetError("peer reset")
            return "ok"

        report = await run_open_loop(
            constant_rate(40, 0.1),
            op,
            history=history,
            max_in_flight=4,
            deadline_s=1,
            f="complete",
            process="c1",
            describe=lambda i: {"project_id": i},
        )
        return report, history

    report, history = run_virtual(main())
    assert (report.ok, report.failed, report.indeterminate) == (1, 1, 2)
    ops = pair_operations(history)
    assert [(o.process, o.f, o.outcome) for o in ops] == [
        ("c1", "complete", "ok"),
        ("c1", "complete", "fail"),
        ("c1", "complete", "info"),
        ("c1", "complete", "info"),
    ]
    assert [o.completion.error for o in ops if o.completion] == [
        None,
        "409 stale",
        "timeout",
        "ConnectionResetError: peer reset",
    ]
    assert ops[1].completion is not None
    assert ops[1].completion.value == {"status": 409}
    assert ops[3].invoke.value == {"project_id": 3}
    assert report.latency.corrected.count == 4  # failures count too


def test_nothing_is_launched_after_the_deadline() -> None:
    async def main() -> GeneratorReport:
        async def op(i: int) -> None:
            return None

        return await run_open_loop(
            constant_rate(10, 10), op, history=virtual_history(), max_in_flight=2, deadline_s=1
        )

    report = run_virtual(main())
    assert (report.planned, report.launched) == (100, 10)
    assert report.valid is False  # 10 of 100 planned


def test_bad_arguments_are_rejected() -> None:
    async def op(i: int) -> None:
        return None

    async def main(**kwargs: float) -> None:
        await run_open_loop(constant_rate(1, 1), op, history=History(), **kwargs)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="max_in_flight"):
        run_virtual(main(max_in_flight=0, deadline_s=1))
    with pytest.raises(ValueError, match="deadline_s"):
        run_virtual(main(max_in_flight=1, deadline_s=0))


def test_virtual_loop_refuses_to_go_back_in_time() -> None:
    loop = VirtualClockLoop()
    try:
        with pytest.raises(ValueError, match="forward"):
            loop.advance(-1)
    finally:
        loop.close()


async def test_driver_runs_on_the_real_event_loop() -> None:
    """Counts only: no wall-clock assertion."""
    history = History()

    async def op(i: int) -> int:
        await asyncio.sleep(0)
        return i

    report = await run_open_loop(
        constant_rate(500, 0.1), op, history=history, max_in_flight=100, deadline_s=30
    )
    assert (report.planned, report.launched, report.ok) == (50, 50, 50)
    assert len(pair_operations(history)) == 50
    assert isinstance(report.latency, OpenLoopLatency)
    assert "latency" not in report.to_dict()


@pytest.mark.parametrize("rate", [100, 1000])
def test_a_stalled_loop_shows_as_lag_at_low_and_high_rates(rate: int) -> None:
    """At 100/s a ticker measures the lag; at 1,000/s (more than one launch
    per 5 ms tick) the launches' own wake-ups do: a 120 ms stall shows either way."""

    async def main() -> GeneratorReport:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)

        async def op(i: int) -> None:
            if i == rate // 2:
                loop.advance(0.120)

        return await run_open_loop(
            constant_rate(rate, 1.0), op, history=virtual_history(), max_in_flight=50, deadline_s=5
        )

    report = run_virtual(main())
    assert report.launched == rate
    assert report.max_lag_ms == pytest.approx(120, abs=6)
    quiet = run_virtual(_quiet_run(rate))
    assert quiet.max_lag_ms < 1
    assert quiet.valid is True


async def _quiet_run(rate: int) -> GeneratorReport:
    async def op(i: int) -> None:
        await asyncio.sleep(0.001)

    return await run_open_loop(
        constant_rate(rate, 1.0), op, history=virtual_history(), max_in_flight=50, deadline_s=5
    )
