"""results.json, JUnit XML, HTML, run directories, timelines and baseline comparison."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.checks import CheckResult, FinalState, run_checks
from harness.history import History, read_jsonl
from harness.metrics import LatencyRecorder
from harness.report import (
    LATEST,
    LatencyMetric,
    ResultsFormatError,
    RunResults,
    SelfCheckCell,
    compare_results,
    fault_spans,
    latency_timeline,
    make_results,
    new_run_id,
    overall_verdict,
    read_results,
    render_comparison_text,
    render_html,
    to_junit_xml,
    write_results,
    write_run,
)
from harness.slo import SloVerdict, apply_overrides, default_slos, evaluate


def sample_history() -> History:
    h = History(wall_clock=lambda: 1_700_000_000.0)
    h.session("s1", "connect", user_id=7, mono_s=100.0)
    for i in range(20):
        t = 100.0 + i * 0.5
        op = h.invoke("g", "complete", {"i": i}, intended_mono_s=t, mono_s=t)
        h.ok(op, {"alert_id": i}, mono_s=t + 0.02 + (0.3 if 4 <= i < 8 else 0.0))
        h.commit(alert_id=i, project_id=1, assignee_id=7, op_id=op.op_id, mono_s=t + 0.015)
        if i != 5:  # alert 5 is lost
            h.receive("s1", user_id=7, event="new_alert", alert_id=i, mono_s=t + 0.03)
    h.fault("start", kind="partition", label="partition app", target="app", mono_s=102.0)
    h.fault("heal", kind="partition", label="partition app", target="app", mono_s=104.0)
    h.fault("start", kind="latency", label="latency pg 200 ms", target="postgres", mono_s=108.0)
    return h


def sample_results(*, run_id: str = "20260101T000000Z-load-aaaaaa") -> RunResults:
    history = sample_history()
    checks = run_checks(["delivery", "no_duplicates", "generation_latency"], history)
    measurements = {k: v for c in checks for k, v in c.measurements.items()}
    slos = evaluate(default_slos(), measurements)
    corrected = LatencyRecorder()
    corrected.record_many([20.0] * 16 + [320.0] * 4)
    return make_results(
        run_id=run_id,
        scenario="load",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:10Z",
        seed=42,
        config={"rate_per_s": 2, "note": "<script>alert(1)</script>"},
        stack={"postgres": "embedded"},
        generator={"planned": 20, "launched": 20, "valid": True, "achieved_rate_per_s": 2.0},
        latencies={"generation.corrected": corrected},
        counters={"requests": 20},
        extra={"subscribers": 3},
        queries={"deltas": [{"query": "SELECT 1", "calls": 40, "total_exec_time_ms": 3.0}]},
        checks=checks,
        slos=slos,
        faults=fault_spans(history),
        timeline=latency_timeline(history),
        self_check=[
            SelfCheckCell(scenario="load", flaw="none", expected="pass", actual="pass"),
            SelfCheckCell(
                scenario="load", flaw="n_plus_one", expected="fail", actual="pass", reason="missed"
            ),
        ],
    )


def test_sample_verdicts_are_what_the_history_says() -> None:
    r = sample_results()
    assert {c.name: c.valid for c in r.checks} == {
        "delivery": False,
        "no_duplicates": "unknown",
        "generation_latency": True,
    }
    statuses = {s.name: s.status for s in r.slos}
    assert statuses["delivery_rate"] == "fail"  # 19/20 = 95 %
    assert statuses["generation_p99_ms"] == "pass"
    assert statuses["reconnection_p99_ms"] == "unknown"
    assert (r.verdict, r.exit_code) == ("fail", 1)


def test_results_json_round_trips(tmp_path: Path) -> None:
    r = sample_results()
    path = write_results(r, tmp_path / "results.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert data["latencies"]["generation.corrected"]["encoded"].startswith("HISTF")
    back = read_results(path)
    assert back == r
    hist = back.latencies["generation.corrected"].recorder()
    assert hist.count == 20
    assert hist.percentile(99) == pytest.approx(320, rel=1e-3)


def test_reading_refuses_other_schemas_and_malformed_files(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    data = sample_results().to_dict()
    path.write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(ResultsFormatError, match="schema_version 99"):
        read_results(path)
    del data["run_id"]
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsFormatError, match="malformed results: KeyError"):
        read_results(path)
    path.write_text("{")
    with pytest.raises(ResultsFormatError, match="not JSON"):
        read_results(path)


def check(valid: bool | str) -> CheckResult:
    return CheckResult(name="c", valid=valid, summary="")  # type: ignore[arg-type]


def slo(status: str) -> SloVerdict:
    (v,) = evaluate(
        {"x": default_slos()["generation_p99_ms"]},
        {"generation_p99_ms": {"pass": 1.0, "fail": 500.0, "unknown": None}[status]},
    )
    return v


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ("pass", 0)),
        ({"checks": [check(True)], "slos": [slo("pass")], "generator_valid": True}, ("pass", 0)),
        ({"checks": [check(False)], "generator_valid": False}, ("fail", 1)),
        ({"slos": [slo("fail")], "generator_valid": False}, ("invalid", 2)),
        ({"slos": [slo("fail")], "checks": [check("unknown")]}, ("fail", 1)),
        ({"checks": [check("unknown")]}, ("unknown", 2)),
        ({"slos": [slo("unknown")]}, ("unknown", 2)),
        ({"slos": [slo("unknown")], "unknown_fails": False}, ("pass", 0)),
        ({"checks": [check(False)], "errors": ["stack did not start"]}, ("error", 2)),
    ],
)
def test_overall_verdict_and_exit_code(
    kwargs: dict[str, object], expected: tuple[str, int]
) -> None:
    assert overall_verdict(**kwargs) == expected  # type: ignore[arg-type]


def test_junit_has_one_testcase_per_check_slo_and_cell_with_the_right_counts() -> None:
    r = sample_results()
    root = ET.fromstring(to_junit_xml(r))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # 3 checks + 5 SLOs + generator + 2 self-check cells.
    assert len(cases) == 11
    assert suite.get("tests") == root.get("tests") == "11"
    # delivery check, delivery_rate SLO, and the self-check cell that missed.
    assert suite.get("failures") == "3"
    # no_duplicates unknown, reconnection/queries/duplication SLOs unknown.
    assert suite.get("errors") == "4"
    failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failures) == {"delivery", "delivery_rate", "load x n_plus_one"}
    delivery = failures["delivery"]
    assert delivery is not None
    assert "1 lost" in (delivery.get("message") or "")
    assert '"alert_id": 5' in (delivery.text or "")
    rate = failures["delivery_rate"]
    assert rate is not None
    assert rate.get("message") == "measured 95 %, target > 99 %, margin -4 %"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["exit_code"] == "1"


def test_junit_lenient_unknowns_are_skipped_and_harness_errors_are_errors() -> None:
    r = dataclasses.replace(sample_results(), unknown_fails=False, errors=("boom\ntrace",))
    suite = ET.fromstring(to_junit_xml(r)).find("testsuite")
    assert suite is not None
    assert (suite.get("skipped"), suite.get("errors")) == ("4", "1")
    invalid = dataclasses.replace(r, generator={"valid": False, "invalid_reason": "lag"}, errors=())
    suite = ET.fromstring(to_junit_xml(invalid)).find("testsuite")
    assert suite is not None
    errors = [c for c in suite.findall("testcase") if c.find("error") is not None]
    assert [c.get("name") for c in errors] == ["validity"]


def test_html_is_self_contained_and_shows_slos_checks_and_matrix() -> None:
    r = sample_results()
    page = render_html(r)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?:", page)
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # config is escaped
    for name in ("generation_p99_ms", "delivery_rate", "reconnection_p99_ms"):
        assert name in page
    assert re.search(r'<td class="fail">FAIL</td>', page)
    assert re.search(r'<td class="pass">PASS</td>', page)
    assert re.search(r'<td class="unknown">UNKNOWN</td>', page)
    assert page.count("<svg") == 2  # percentile chart and latency over time
    assert 'class="fault"' in page
    assert "partition app" in page
    assert "never healed" in page  # the latency fault has no heal
    assert "Self-check matrix" in page
    assert "1/2 cells as expected" in page
    assert '"subscribers": 3' in page
    assert '"alert_id": 5' in page  # the lost alert as a counterexample


def test_html_of_a_bare_run_still_renders() -> None:
    r = make_results(
        run_id="r1", scenario="empty", started_at="t0", finished_at="t1", errors=["no stack"]
    )
    page = render_html(r)
    assert "ERROR" in page
    assert "no stack" in page
    assert "<svg" not in page


def test_write_run_creates_the_directory_and_moves_latest(tmp_path: Path) -> None:
    first = sample_results(run_id="20260101T000000Z-load-aaaaaa")
    history = sample_history()
    run_dir = write_run(first, tmp_path / "reports", history=history)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "history.jsonl",
        "junit.xml",
        "report.html",
        "results.json",
    ]
    latest = tmp_path / "reports" / LATEST
    assert os.readlink(latest) == first.run_id  # relative
    assert list(read_jsonl(latest / "history.jsonl")) == list(history)
    assert read_results(latest / "results.json") == first

    second = sample_results(run_id="20260101T000100Z-load-bbbbbb")
    write_run(second, tmp_path / "reports")
    assert os.readlink(latest) == second.run_id
    assert len(read_jsonl(latest / "history.jsonl")) == 0
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        first.run_id,
        second.run_id,
        LATEST,
    ]
    with pytest.raises(ValueError, match="plain file name"):
        write_run(dataclasses.replace(second, run_id="../escape"), tmp_path / "reports")


def test_new_run_ids_sort_by_time_and_are_file_names() -> None:
    import datetime as dt

    a = new_run_id("load/x", now=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), suffix="ab")
    assert a == "20260102T030405Z-load_x-ab"
    assert new_run_id("load") != new_run_id("load")


def test_fault_spans_and_latency_timeline_from_a_history() -> None:
    history = sample_history()
    spans = fault_spans(history)
    assert [(s.label, s.start_s, s.end_s) for s in spans] == [
        ("partition app", 2.0, 4.0),
        ("latency pg 200 ms", 8.0, None),
    ]
    buckets = latency_timeline(history, bucket_s=2.0)
    assert sum(b.count for b in buckets) == 20
    slow = next(b for b in buckets if b.t_s == 2.0)  # ops 4-7, 320 ms each
    assert slow.p99_ms == pytest.approx(320, rel=1e-2)
    assert latency_timeline(history, requests=["generate"]) == []
    with pytest.raises(ValueError, match="bucket_s"):
        latency_timeline(history, bucket_s=0)


def test_baseline_comparison_shows_ratios_and_direction() -> None:
    base = sample_results()
    faster = LatencyRecorder()
    faster.record_many([10.0] * 20)
    slos = apply_overrides(default_slos(), [])
    current = dataclasses.replace(
        base,
        run_id="current",
        latencies={"generation.corrected": LatencyMetric.from_recorder(faster)},
        slos=tuple(evaluate(slos, {"delivery_rate": 100.0, "generation_p99_ms": 10.0})),
    )
    comparison = compare_results(base, current)
    rows = {r.figure: r for r in comparison.rows}
    p99 = rows["latency generation.corrected p99_ms"]
    assert p99.ratio == pytest.approx(10 / 320, rel=1e-2)
    assert p99.change == "better"
    assert rows["slo delivery_rate"].change == "better"  # 95 -> 100, higher is better
    assert rows["slo reconnection_p99_ms"].change == "n/a"
    assert rows["generator achieved_rate_per_s"].change == "same"
    assert comparison.worse == []
    assert compare_results(current, base).worse  # the other way round is worse
    text = render_comparison_text(comparison)
    assert "latency generation.corrected p99_ms" in text
    assert "0.03x" in text
    page = render_html(current, baseline=comparison)
    assert "Compared with 20260101T000000Z-load-aaaaaa" in page
    with pytest.raises(ValueError, match="tolerance"):
        compare_results(base, current, tolerance=-1)


def test_final_state_checkers_feed_results() -> None:
    """A fuller pipeline: final reads into checkers, into results, into JUnit."""
    final = FinalState(
        alerts=[{"id": 1, "project_id": 1, "step_id": 1, "status": "ACTIVE", "assigned_to_id": 7}]
    )
    checks = run_checks(["no_duplicates", "no_phantoms"], History(), final)
    r = make_results(run_id="r", scenario="s", started_at="a", finished_at="b", checks=checks)
    assert (r.verdict, r.exit_code) == ("unknown", 2)  # no_phantoms: nothing received
    suite = ET.fromstring(to_junit_xml(r)).find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"


def test_a_cell_that_catches_its_flaw_only_sometimes_does_not_match() -> None:
    flaky = SelfCheckCell(
        scenario="dedupe",
        flaw="no_unique_index",
        expected="fail",
        actual="pass",
        runs=20,
        as_expected=17,
    )
    steady = dataclasses.replace(flaky, flaw="unscoped_complete", actual="fail", as_expected=20)
    assert not flaky.matches
    assert steady.matches
    # An older results.json (one run per cell, no counts) still reads.
    assert SelfCheckCell(scenario="load", flaw="none", expected="pass", actual="pass").matches
    html = render_html(dataclasses.replace(sample_results(), self_check=(flaky, steady)))
    assert "17/20 runs as expected" in html
