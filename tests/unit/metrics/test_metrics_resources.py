"""CPU by process role over a window (harness.metrics.resources) and its report."""

from __future__ import annotations

import gc
import os

from harness.metrics.resources import (
    EXITED,
    CpuMark,
    gc_pauses_from_metrics,
    mark_cpu,
    process_cpu_s,
    usage_between,
)
from harness.report import make_results
from harness.report.html import render_html
from reference_impl.metrics import Metrics


def _mark(t: float, cpu: dict[str, float], busy: float, total: float) -> CpuMark:
    return CpuMark(mono_s=t, cpu_s=cpu, machine_busy_s=busy, machine_total_s=total)


def test_usage_is_per_role_share_of_a_core_and_per_operation() -> None:
    start = _mark(100.0, {"app": 10.0, "postgres": 4.0}, busy=50.0, total=100.0)
    end = _mark(110.0, {"app": 17.0, "postgres": 6.0}, busy=65.0, total=120.0)
    usage = usage_between(start, end, operations=1000, cores=2).to_dict()
    assert usage["window_s"] == 10.0
    assert usage["roles"]["app"] == {"cpu_s": 7.0, "cpu_pct": 70.0, "cpu_ms_per_op": 7.0}
    assert usage["roles"]["postgres"]["cpu_ms_per_op"] == 2.0
    assert list(usage["roles"]) == ["app", "postgres"]  # biggest first
    assert usage["total_cpu_pct"] == 90.0
    assert usage["total_cpu_ms_per_op"] == 9.0
    assert usage["machine_busy_pct"] == 75.0
    assert usage["saturated"] is False


def test_a_machine_busy_near_every_core_is_flagged_saturated() -> None:
    start = _mark(0.0, {"app": 0.0}, busy=0.0, total=0.0)
    end = _mark(10.0, {"app": 9.5}, busy=19.0, total=20.0)
    assert usage_between(start, end, cores=2).to_dict()["saturated"] is True


def test_a_role_that_vanished_is_reported_unmeasured_not_zero() -> None:
    def read(pid: int, children: bool) -> float | None:
        return None if pid == 2 else 1.0

    start = mark_cpu({"app": 1, "redis": 2}, read=read, machine=lambda: (1.0, 2.0))
    end = mark_cpu({"app": 1}, read=read, machine=lambda: (2.0, 4.0))
    usage = usage_between(start, end).to_dict()
    # Listed, not dropped: no figure, and why.
    assert usage["roles"]["redis"] == {
        "cpu_s": None,
        "cpu_pct": None,
        "cpu_ms_per_op": None,
        "unmeasured": EXITED,
    }
    assert list(usage["roles"]) == ["app", "redis"]  # measured first
    assert usage["unmeasured"] == ["redis"]
    assert usage["operations"] is None
    assert usage["roles"]["app"]["cpu_ms_per_op"] is None


def test_a_role_whose_process_was_restarted_is_unmeasured_not_its_new_pids_cpu() -> None:
    # The app was SIGKILLed and started again between the marks: pid 1 had
    # used 5 s, its successor pid 9 only 0.2 s; neither difference is the app's.
    cpu = {1: 5.0, 9: 0.2, 2: 1.0}
    start = mark_cpu(
        {"app": 1, "redis": 2}, read=lambda pid, _c: cpu[pid] - 1.0, machine=lambda: (1.0, 2.0)
    )
    end = mark_cpu(
        {"app": 9, "redis": 2}, read=lambda pid, _c: cpu[pid], machine=lambda: (2.0, 4.0)
    )
    usage = usage_between(start, end)
    assert set(usage.cpu_s) == {"redis"}
    assert set(usage.unmeasured) == {"app"}
    assert "started again" in usage.unmeasured["app"]
    assert usage.to_dict()["unmeasured"] == ["app"]


def test_the_harness_is_read_without_its_children() -> None:
    calls: list[tuple[int, bool]] = []

    def read(pid: int, children: bool) -> float:
        calls.append((pid, children))
        return 0.0

    mark_cpu({"postgres": 7}, alone={"harness": 8}, read=read, machine=lambda: (0.0, 1.0))
    assert calls == [(7, True), (8, False)]


def test_process_cpu_grows_with_work_and_is_none_for_a_missing_pid() -> None:
    before = process_cpu_s(os.getpid(), children=False)
    assert before is not None
    after = before
    # The kernel counts CPU in clock ticks (10 ms): work until one passes
    # (bounded: at most 400 small chunks of work).
    for _ in range(400):
        sum(i * i for i in range(20_000))
        after = process_cpu_s(os.getpid(), children=False) or before
        if after > before:
            break
    assert after > before
    assert process_cpu_s(2**22 + 12345) is None


def test_the_report_shows_cpu_by_process_and_round_trips() -> None:
    start = _mark(0.0, {"app": 0.0, "postgres": 0.0}, busy=0.0, total=10.0)
    end = _mark(5.0, {"app": 4.0, "postgres": 1.0}, busy=9.6, total=20.0)
    resources = usage_between(start, end, operations=500, cores=2).to_dict()
    gc_pauses = {
        "app": {"2": {"collections": 3, "pause_ms_total": 310.0, "longest_ms_at_most": 250.0}}
    }
    r = make_results(
        run_id="r",
        scenario="load",
        started_at="a",
        finished_at="b",
        resources=resources,
        extra={
            "app_gc_pauses": gc_pauses,
            "harness_gc_pauses": {
                "1": {"collections": 40, "pause_ms_total": 90.5, "longest_ms": 417.0}
            },
            "shards": [
                {
                    "shard": 1,
                    "gc_pauses": {
                        "0": {"collections": 7, "pause_ms_total": 3.5, "longest_ms": 1.25}
                    },
                }
            ],
        },
    )
    html = render_html(r)
    assert "Garbage-collector pauses" in html
    assert "2 (full)" in html
    assert "&le; 250 ms" in html
    assert "harness (while the scenario ran)" in html
    assert "417 ms" in html
    gc_section = html[html.index("Garbage-collector pauses") :]
    assert "<td>harness shard 1</td>" in gc_section  # a sharded run's shards, each
    assert "1.25 ms" in gc_section
    assert "CPU by process" in html
    assert "SATURATED" in html
    assert "app 8 ms" in html
    assert type(r).from_dict(r.to_dict()).resources == resources


def test_the_apps_gc_pauses_are_timed_and_read_back_from_its_metrics() -> None:
    metrics = Metrics()
    stop = metrics.watch_gc()
    try:
        gc.collect()  # a full collection: generation 2
        gc.collect(0)
    finally:
        stop()
    stop()  # idempotent
    pauses = gc_pauses_from_metrics(metrics.render().decode())
    assert pauses["2"]["collections"] >= 1
    assert pauses["0"]["collections"] >= 1
    longest = pauses["2"]["longest_ms_at_most"]
    assert longest is not None
    assert longest > 0
    before = pauses["2"]["collections"]
    gc.collect()  # no longer watched
    assert gc_pauses_from_metrics(metrics.render().decode())["2"]["collections"] == before


def test_gc_pauses_of_a_body_without_the_metric_are_empty() -> None:
    assert gc_pauses_from_metrics("# nothing here\nup 1\n") == {}


def test_the_run_counts_the_receipts_inside_the_measured_window() -> None:
    # A target delivering after the window leaves those events (and the
    # harness's CPU for them) out: the count says how many were in.
    from types import SimpleNamespace

    from harness.history import History
    from harness.runner import _resources

    history = History()
    for at in (99.0, 100.0, 105.0, 110.0, 112.0):
        history.receive("c1", user_id=1, event="new_alert", alert_id=int(at), mono_s=at)
    ctx = SimpleNamespace(
        cpu_window=(
            _mark(100.0, {"harness": 1.0}, busy=0.0, total=10.0),
            _mark(110.0, {"harness": 3.0}, busy=5.0, total=30.0),
        ),
        history=history,
    )
    usage = _resources(ctx, None)  # type: ignore[arg-type]
    assert usage is not None
    assert usage["receipts"] == 3
    assert usage["roles"]["harness"]["cpu_s"] == 2.0
