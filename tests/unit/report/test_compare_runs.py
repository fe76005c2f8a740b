"""alertbench compare: scenario by scenario, exit 1 on a regression beyond the tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import EXIT_FAILED, EXIT_HARNESS, EXIT_OK, main
from harness.metrics import LatencyRecorder
from harness.report import make_results, write_run


def _run(folder: Path, scenario: str, p99_ms: float) -> Path:
    request = LatencyRecorder()
    request.record_many([5.0] * 90 + [p99_ms] * 10)
    result = make_results(
        run_id=f"{folder.name}-{scenario}",
        scenario=scenario,
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:10Z",
        latencies={"request.corrected": request},
    )
    write_run(result, folder, name=scenario, latest=False)
    return folder


def test_a_slower_p99_beyond_the_tolerance_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _run(tmp_path / "base", "load", 20.0)
    new = _run(tmp_path / "new", "load", 40.0)
    assert main(["compare", str(base), str(new)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "load: latency request.corrected p99_ms" in out
    assert (new / "compare-base.html").exists()
    # Within a tolerance that says so, the same change is noise.
    assert main(["compare", str(base), str(new), "--tolerance", "1.5"]) == EXIT_OK


def test_runs_that_share_no_scenario_or_cannot_be_read_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _run(tmp_path / "base", "load", 20.0)
    other = _run(tmp_path / "other", "cache", 20.0)
    assert main(["compare", str(base), str(other)]) == EXIT_HARNESS
    assert "share no scenario" in capsys.readouterr().err
    assert main(["compare", str(base), str(tmp_path / "missing")]) == EXIT_HARNESS
    assert "no results.json there" in capsys.readouterr().err
    assert main(["compare", str(base), str(base), "--tolerance", "-1"]) == EXIT_HARNESS


def test_one_scenario_s_folder_or_file_is_a_side_too(tmp_path: Path) -> None:
    base = _run(tmp_path / "base", "load", 20.0)
    new = _run(tmp_path / "new", "load", 21.0)
    assert main(["compare", str(base / "load"), str(new / "load" / "results.json")]) == EXIT_OK
