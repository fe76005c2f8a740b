"""The reaper stops only what it can prove a dead owner started.

These tests launch real (idle) child processes but no services.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.stack._process import RECORD, RunDir, reap_leftovers

IDLE = [sys.executable, "-c", "import signal; signal.pause()"]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[RunDir]:
    run = RunDir.create(tmp_path)
    yield run
    run.close(timeout_s=5)


def _pretend_owner_died(run: RunDir) -> None:
    """Rewrite the record as if its owner were a process that no longer exists."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    record = json.loads((run.path / RECORD).read_text())
    record["owner"] = {"pid": dead.pid, "create_time": 1.0}
    (run.path / RECORD).write_text(json.dumps(record))


def test_children_of_a_dead_owner_are_stopped_and_the_directory_removed(
    tmp_path: Path, run: RunDir
) -> None:
    child = run.spawn("idle", [*IDLE, str(run.path)], stop_signal=signal.SIGTERM)
    _pretend_owner_died(run)

    reaped = reap_leftovers(tmp_path, timeout_s=5)

    assert [(r.path, r.killed_pids) for r in reaped] == [(run.path, (child.pid,))]
    child.popen.wait(timeout=5)  # the reaper already collected its exit status
    assert not psutil.pid_exists(child.pid)
    assert not run.path.exists()


def test_a_live_owner_is_left_alone(tmp_path: Path, run: RunDir) -> None:
    child = run.spawn("idle", [*IDLE, str(run.path)], stop_signal=signal.SIGTERM)

    assert reap_leftovers(tmp_path, timeout_s=5) == []

    assert child.alive()
    assert (run.path / RECORD).exists()


def test_a_reused_pid_is_never_signalled(tmp_path: Path, run: RunDir) -> None:
    # The recorded child pid now belongs to a process started at another time
    # (here: an unrelated process we start outside the run directory).
    stranger = subprocess.Popen(IDLE)
    try:
        record = json.loads((run.path / RECORD).read_text())
        record["children"] = [
            {"name": "postgres", "pid": stranger.pid, "create_time": 2.0, "stop_signal": 15}
        ]
        (run.path / RECORD).write_text(json.dumps(record))
        _pretend_owner_died(run)

        reaped = reap_leftovers(tmp_path, timeout_s=5)

        assert [r.killed_pids for r in reaped] == [()]
        assert psutil.pid_exists(stranger.pid)
        assert stranger.poll() is None
    finally:
        stranger.terminate()
        stranger.wait(timeout=5)


def test_a_process_that_does_not_name_the_run_directory_is_not_ours(
    tmp_path: Path, run: RunDir
) -> None:
    stranger = subprocess.Popen(IDLE, cwd=tmp_path.parent)
    try:
        record = json.loads((run.path / RECORD).read_text())
        record["children"] = [
            {
                "name": "redis",
                "pid": stranger.pid,
                "create_time": psutil.Process(stranger.pid).create_time(),
                "stop_signal": 15,
            }
        ]
        (run.path / RECORD).write_text(json.dumps(record))
        _pretend_owner_died(run)

        reap_leftovers(tmp_path, timeout_s=5)

        assert stranger.poll() is None
    finally:
        stranger.terminate()
        stranger.wait(timeout=5)


@pytest.mark.parametrize("content", ["not json", json.dumps({"magic": "something-else"}), None])
def test_directories_without_a_valid_record_are_untouched(
    tmp_path: Path, content: str | None
) -> None:
    lookalike = tmp_path / "alertbench-run-123-abc"
    lookalike.mkdir()
    if content is not None:
        (lookalike / RECORD).write_text(content)

    assert reap_leftovers(tmp_path) == []
    assert lookalike.exists()


def test_close_stops_children_and_removes_everything(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    child = run.spawn("idle", [*IDLE, str(run.path)], stop_signal=signal.SIGTERM)

    run.close(timeout_s=5)

    assert child.popen.returncode == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
