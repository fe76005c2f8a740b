"""A run's folder: its index, summary line and combined JUnit; the list of every run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.checks import CheckResult
from harness.metrics import LatencyRecorder
from harness.report import RunResults, make_results, write_run
from harness.report.suite import finish_run, summary_line, update_reports_index
from harness.slo import evaluate, load_slos


def _result(scenario: str, *, p99_ms: float = 20.0, leak: bool = False) -> RunResults:
    request = LatencyRecorder()
    request.record_many([5.0] * 90 + [p99_ms] * 10)
    slos = evaluate(load_slos(None), {"generation_p99_ms": p99_ms, "duplication_rate": 0.0})
    checks = [CheckResult(name="no_leaks", valid=not leak, summary="3 receipts leaked")]
    return make_results(
        run_id=f"r-{scenario}",
        scenario=scenario,
        started_at=f"2026-01-01T00:00:0{len(scenario) % 10}Z",
        finished_at="2026-01-01T00:00:10Z",
        latencies={"request.corrected": request},
        checks=checks,
        slos=[s for s in slos if s.measured is not None],
    )


def test_the_summary_line_counts_verdicts_and_names_the_first_failure() -> None:
    line = summary_line([_result("load", p99_ms=125.0), _result("dedupe"), _result("cache")])
    assert line == (
        "3 scenarios: 2 passed, 1 failed (load: SLO generation_p99_ms 125 ms, target < 100)"
    )
    assert summary_line([_result("delivery", leak=True)]) == (
        "1 scenario: 1 failed (delivery: no_leaks: 3 receipts leaked)"
    )


def test_a_run_folder_gets_an_index_a_summary_and_one_junit_file(tmp_path: Path) -> None:
    run = tmp_path / "20260101T000000Z-run-abc123"
    for result in (_result("load", p99_ms=125.0), _result("cache")):
        write_run(result, run, name=result.scenario, latest=False)
    line = finish_run(
        tmp_path, run.name, started_at="2026-01-01T00:00:00Z", command="alertbench run"
    )
    assert line.startswith("2 scenarios: 1 passed, 1 failed (load:")
    assert (tmp_path / "latest").resolve() == run.resolve()
    summary = json.loads((run / "summary.json").read_text())
    assert [e["folder"] for e in summary["scenarios"]] == ["load", "cache"]
    assert summary["scenarios"][0]["figures"]["request p99 ms"] >= 125.0
    assert summary["exit_code"] == 1
    index = (run / "index.html").read_text()
    assert 'href="load/report.html"' in index
    assert 'href="cache/report.html"' in index
    suites = ET.parse(run / "junit.xml").getroot()
    assert {s.get("name") for s in suites} == {"alertbench.load", "alertbench.cache"}
    assert int(suites.get("failures", "0")) >= 1


def test_the_list_of_runs_shows_each_once_with_a_trend(tmp_path: Path) -> None:
    for n, p99 in enumerate((20.0, 40.0, 80.0)):
        run = tmp_path / f"2026010{n + 1}T000000Z-run-{n}"
        write_run(_result("load", p99_ms=p99), run, name="load", latest=False)
        finish_run(tmp_path, run.name, started_at="2026-01-01T00:00:00Z")
    text = update_reports_index(tmp_path).read_text()
    # Newest first, and the `latest` link is not a run of its own.
    assert text.count('/index.html">2026') == 3
    assert text.index("20260103") < text.index("20260101")
    assert "<svg" in text  # the trend of request p99 across the three runs
