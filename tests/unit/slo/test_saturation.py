"""A latency SLO that failed on a SATURATED machine is unknown: the machine's figure."""

from __future__ import annotations

from harness.report import make_results
from harness.runner import _saturation_unknown
from harness.slo import evaluate, load_slos

MEASURED = {"generation_p99_ms": 250.0, "delivery_rate": 90.0, "duplication_rate": 0.0}


def test_on_a_saturated_machine_a_failed_latency_is_unknown_and_says_why() -> None:
    verdicts = evaluate(load_slos(None), MEASURED)
    busy = {"saturated": True, "machine_busy_pct": 97.2}
    judged = {v.name: v for v in _saturation_unknown(verdicts, busy)}
    assert judged["generation_p99_ms"].status == "unknown"
    assert "SATURATED (97 % busy)" in judged["generation_p99_ms"].note
    # Correctness does not depend on the machine: a failed rate stays failed.
    assert judged["delivery_rate"].status == "fail"
    assert judged["duplication_rate"].status == "pass"
    results = make_results(
        run_id="r", scenario="load", started_at="", finished_at="", slos=list(judged.values())
    )
    assert (results.verdict, results.exit_code) == ("fail", 1)
    latency_only = [v for v in judged.values() if v.name != "delivery_rate"]
    results = make_results(
        run_id="r", scenario="load", started_at="", finished_at="", slos=latency_only
    )
    assert (results.verdict, results.exit_code) == ("unknown", 2)


def test_on_an_idle_machine_a_failed_latency_stays_failed() -> None:
    verdicts = evaluate(load_slos(None), MEASURED)
    idle = {"saturated": False, "machine_busy_pct": 40.0}
    judged = {v.name: v for v in _saturation_unknown(verdicts, idle)}
    assert judged["generation_p99_ms"].status == "fail"
    assert judged["generation_p99_ms"].note == ""
