"""Ctrl-C and SIGTERM during ``alertbench run``: one line, 130/143, a partial
report marked INTERRUPTED, and nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_says_so_in_one_line_and_leaves_nothing(
    signum: int, tmp_path: Path, tmp_root: Path
) -> None:
    reports = tmp_path / "reports"
    env = {**os.environ, "ALERTBENCH_TMPDIR": str(tmp_root)}
    argv = [sys.executable, "-m", "harness.cli", "run", "delivery", "--projects", "20"]
    proc = subprocess.Popen(
        [*argv, "--reports-dir", str(reports)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait (bounded) for the scenario to be running: its clients are connected.
    running = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "delivery: running" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert running.wait(timeout=120), "".join(lines)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()]  # one line
    assert f"interrupted by {signal.Signals(signum).name}" in err
    results = reports / "latest" / "delivery" / "results.json"
    data = json.loads(results.read_text())
    assert data["verdict"] == "interrupted"
    assert data["exit_code"] == 128 + signum
    assert "INTERRUPTED" in (results.parent / "report.html").read_text()
    # Teardown ran: no run directory (and so no process it recorded) is left.
    assert list(tmp_root.iterdir()) == []
