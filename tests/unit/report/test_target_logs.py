"""A run keeps what each target process wrote: ``logs/<process>.log`` beside
the report, linked from it; the stack keeps the end of an oversized log."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import make_results, render_html, write_run
from harness.runner import _target_logs
from harness.stack.core import _read_from

LOGS = {"app": b"started\nTraceback: boom\n", "worker": b"worker running on queue\n"}


def test_the_run_folder_holds_each_process_s_log_and_the_report_links_it(tmp_path: Path) -> None:
    results = make_results(
        run_id="r1", scenario="load", started_at="t0", finished_at="t1", extra=_target_logs(LOGS)
    )
    run_dir = write_run(results, tmp_path, logs=LOGS)
    assert (run_dir / "logs" / "app.log").read_bytes() == LOGS["app"]
    assert (run_dir / "logs" / "worker.log").read_bytes() == LOGS["worker"]
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<a href='logs/app.log'>app</a> (0.0 KB)" in page
    assert "<a href='logs/worker.log'>worker</a>" in page


def test_a_run_without_logs_has_no_folder_and_no_row(tmp_path: Path) -> None:
    results = make_results(
        run_id="r1", scenario="load", started_at="t0", finished_at="t1", extra=_target_logs({})
    )
    run_dir = write_run(results, tmp_path)
    assert not (run_dir / "logs").exists()
    assert "target logs" not in render_html(results)


def test_a_process_name_that_is_not_a_file_name_is_refused(tmp_path: Path) -> None:
    results = make_results(run_id="r1", scenario="load", started_at="t0", finished_at="t1")
    with pytest.raises(ValueError, match=r"plain file name, got '\.\./app'"):
        write_run(results, tmp_path, logs={"../app": b"x"})


def test_a_log_starts_where_its_process_started_and_keeps_its_end(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"an earlier app\n" + b"0123456789" * 10)
    start = len(b"an earlier app\n")
    assert _read_from(log, start) == b"0123456789" * 10
    kept = _read_from(log, start, limit=25)
    assert kept == b"[alertbench: the first 75 bytes are left out]\n" + b"56789" + b"0123456789" * 2
    assert _read_from(tmp_path / "missing.log", 0).startswith(b"[alertbench: the log could not")


def test_the_terminal_summary_points_at_the_logs_of_a_run_that_did_not_pass() -> None:
    from harness.cli import _results_table
    from harness.report import RunResults

    def rows(results: RunResults) -> list[str]:
        return [str(cell) for column in _results_table(results).columns for cell in column.cells]

    extra = _target_logs(LOGS)
    failed = make_results(
        run_id="r1", scenario="load", started_at="t0", finished_at="t1", extra=extra,
        errors=["RuntimeError: the app exited"],
    )  # fmt: skip
    assert failed.verdict != "pass"
    assert "target logs" in rows(failed)
    assert any(r.startswith("logs/app.log (0.0 KB), logs/worker.log") for r in rows(failed))
    passed = make_results(
        run_id="r1", scenario="load", started_at="t0", finished_at="t1", extra=extra
    )
    assert passed.verdict == "pass"
    assert "target logs" not in rows(passed)
