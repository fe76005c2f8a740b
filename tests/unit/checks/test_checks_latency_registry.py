"""Latency checkers (generation, delivery, reconnection) and running checkers by name."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import (
    CHECKERS,
    CheckResult,
    FinalState,
    collect_measurements,
    delivery_latency,
    generation_latency,
    reconnection,
    register,
    run_checks,
)
from harness.errors import ConfigError
from harness.history import Event, History


def history_at(t: list[float]) -> History:
    """A history whose clock reads the first element of ``t`` (tests move it)."""
    return History(mono_clock=lambda: t[0], wall_clock=lambda: 0.0)


def test_generation_latency_runs_from_intended_start_to_the_linked_commit() -> None:
    now = [0.0]
    h = history_at(now)
    for i in range(100):
        now[0] = i * 0.1 + 0.005  # started 5 ms late
        op = h.invoke("g", "complete", {"i": i}, intended_mono_s=i * 0.1)
        now[0] += 0.020
        h.ok(op)
        # The commit happened 5 ms before the response arrived.
        h.commit(alert_id=i, project_id=1, assignee_id=7, op_id=op.op_id, mono_s=now[0] - 0.005)
    result = generation_latency(h)
    assert result.valid is True
    assert result.measurements["generation_p99_ms"] == pytest.approx(20.0, rel=1e-2)
    failing = generation_latency(h, limit_ms=10)
    assert failing.valid is False
    assert failing.counterexample_total == 100
    assert failing.counterexamples[0]["f"] == "complete"


def test_generation_latency_counts_timeouts_as_a_lower_bound() -> None:
    now = [0.0]
    h = history_at(now)
    fast = h.invoke("g", "generate", intended_mono_s=0.0)
    now[0] = 0.01
    h.ok(fast)
    slow = h.invoke("g", "generate", intended_mono_s=0.0)
    now[0] = 5.0
    h.info(slow, "timeout")
    refused = h.invoke("g", "generate", intended_mono_s=0.0)
    h.fail(refused, "409")
    assert generation_latency(h, percentile=100).measurements[
        "generation_p100_ms"
    ] == pytest.approx(5000, rel=1e-3)
    only_ok = generation_latency(h, percentile=100, include_indeterminate=False)
    assert only_ok.measurements["generation_p100_ms"] == pytest.approx(10, rel=1e-2)
    assert generation_latency(History()).valid == "unknown"


def test_delivery_latency_from_commit_to_first_receipt() -> None:
    h = History()
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=10.0)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, mono_s=10.050)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, via="sync", mono_s=30.0)
    result = delivery_latency(h)
    assert result.measurements["delivery_p99_ms"] == pytest.approx(50, rel=1e-2)
    assert delivery_latency(h, limit_ms=20).valid is False
    assert delivery_latency(History()).valid == "unknown"


def reconnect_history(*, back_at: float | None) -> History:
    h = History()
    h.session("a", "connect", user_id=7, mono_s=0.0)
    h.fault("start", kind="partition", label="partition app", mono_s=1.0)
    h.session("a", "disconnect", user_id=7, mono_s=1.2)
    h.fault("heal", kind="partition", label="partition app", mono_s=4.0)
    if back_at is not None:
        h.session("a", "reconnect", user_id=7, mono_s=back_at)
        h.session("a", "caught_up", user_id=7, mono_s=back_at + 0.5)
    h.session("b", "connect", user_id=8, mono_s=5.0)
    return h


def test_reconnection_is_measured_from_the_heal() -> None:
    h = reconnect_history(back_at=6.0)
    result = reconnection(h)
    assert result.valid is True
    assert result.measurements["reconnection_p99_ms"] == pytest.approx(2000, rel=1e-3)
    caught_up = reconnection(h, until="caught_up")
    assert caught_up.measurements["reconnection_p99_ms"] == pytest.approx(2500, rel=1e-3)
    assert reconnection(h, limit_ms=1000).valid is False
    with pytest.raises(ValueError, match="until"):
        reconnection(h, until="soon")


def test_reconnection_fails_when_a_client_never_comes_back() -> None:
    result = reconnection(reconnect_history(back_at=None))
    assert result.valid is False
    assert result.counterexamples[0]["client"] == "a"
    assert result.counts["never_back"] == 1
    # At least from the heal (4.0) to the end of the history (5.0).
    assert result.measurements["reconnection_p99_ms"] == pytest.approx(1000, rel=1e-3)


def test_reconnection_is_unknown_without_a_disconnect() -> None:
    h = History()
    h.session("a", "connect", user_id=7)
    assert reconnection(h).valid == "unknown"


# -- registry ------------------------------------------------------------------


def duplicated_final() -> FinalState:
    rows = [
        {"id": i, "project_id": 1, "step_id": 1, "status": "ACTIVE", "assigned_to_id": 7}
        for i in (1, 2)
    ]
    return FinalState(alerts=rows)


def test_run_checks_by_name_and_with_options() -> None:
    h = reconnect_history(back_at=6.0)
    results = run_checks(["no_duplicates", "reconnection"], h, duplicated_final())
    assert [(r.name, r.valid) for r in results] == [
        ("no_duplicates", False),
        ("reconnection", True),
    ]
    with_options = run_checks({"reconnection": {"limit_ms": 100}}, h)
    assert with_options[0].valid is False
    assert collect_measurements(results) == {
        "duplication_rate": 50.0,
        "reconnection_p99_ms": pytest.approx(2000, rel=1e-3),
    }


def test_unknown_names_and_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown checker; known: \[.*'delivery'"):
        run_checks(["no_such_check"], History())
    with pytest.raises(ConfigError, match="bad options"):
        run_checks({"delivery": {"colour": "red"}}, History())


def test_a_checker_that_raises_is_unknown_and_the_others_still_run() -> None:
    @register("explodes")
    def explodes(history: list[Event], final: FinalState | None = None, **_: Any) -> CheckResult:
        raise RuntimeError("bug in checker")

    try:
        results = run_checks(["explodes", "no_duplicates"], History(), duplicated_final())
        assert results[0].valid == "unknown"
        assert "RuntimeError: bug in checker" in results[0].summary
        assert results[1].valid is False
        with pytest.raises(ValueError, match="already registered"):
            register("explodes")(CHECKERS["no_duplicates"])
    finally:
        del CHECKERS["explodes"]
