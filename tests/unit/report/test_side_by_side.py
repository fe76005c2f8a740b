"""Targets side by side: the figures of each target's runs, and a sweep's highest rate."""

from __future__ import annotations

import json
from pathlib import Path

from harness.metrics import LatencyRecorder
from harness.report import RunResults, make_results
from harness.report.side_by_side import side_by_side, write_side_by_side


def _run(target: str, rate: float, p99_ms: float, *, passed: bool) -> RunResults:
    request = LatencyRecorder()
    request.record_many([5.0] * 90 + [p99_ms] * 10)
    return make_results(
        run_id=f"run-{target}-{rate:g}-load",
        scenario="load",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:10Z",
        config={"rate_per_s": rate},
        generator={"valid": True, "achieved_rate_per_s": rate * 0.99},
        latencies={"request.corrected": request},
        resources={"roles": {"app": {"cpu_ms_per_op": 1.5}}, "machine_busy_pct": 40.0},
        errors=() if passed else ("boom",),
        target={"name": target},
    )


def test_a_sweep_reports_the_highest_rate_each_target_held(tmp_path: Path) -> None:
    per_target = {
        "reference": [
            _run("reference", 100, 20, passed=True),
            _run("reference", 200, 90, passed=False),
        ],
        "node": [_run("node", 100, 10, passed=True), _run("node", 200, 30, passed=True)],
    }
    data = side_by_side(per_target, sweep=True)
    load = data["scenarios"]["load"]
    assert load["reference"]["highest_rate_held"] == 100
    assert load["node"]["highest_rate_held"] == 200
    first = load["node"]["runs"][0]
    assert first["verdict"] == "pass"
    assert first["request p99 ms"] >= 10.0
    assert first["cpu_ms_per_completion"] == {"app": 1.5}
    assert first["commit -> receipt p99 ms"] is None  # no such histogram: n/a, not 0
    html = write_side_by_side(per_target, tmp_path / "cmp", sweep=True)
    text = html.read_text()
    assert "highest rate held" in text
    assert "reference" in text
    assert "node" in text
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["targets"] == [
        "reference",
        "node",
    ]
