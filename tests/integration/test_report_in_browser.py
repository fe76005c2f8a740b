"""A real run's report, as a person sees it: headless Chromium loads it, no
console message, every chart drawn; a screenshot is kept as an artifact.

Needs Debian's ``chromium`` (``apt-get install chromium``); skipped, with the
reason, where it is absent. The screenshot goes to ``$ALERTBENCH_ARTIFACTS``
(default ``artifacts/`` in the checkout).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import scenarios
from harness.runner import RunOptions, run_scenario
from harness.scenario import RunParams
from harness.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags for a closed network: no background fetches, no first-run work.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_network_report_renders_every_chart_without_a_console_message(
    alertbench_stack: Stack, tmp_path: Path
) -> None:
    params = RunParams(projects=20, rate_per_s=20.0, duration_s=3.0, seed=7, drain_s=10.0)
    results = asyncio.run(
        run_scenario(
            scenarios.SCENARIOS["network"],
            alertbench_stack,
            params,
            options=RunOptions(reports_dir=tmp_path / "reports"),
            run_id="browser",
        )
    )
    report = tmp_path / "reports" / results.run_id / "report.html"
    url = report.resolve().as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    charts = re.findall(r"<svg class=\"chart\".*?</svg>", dom.stdout, re.S)
    # Request latency, receipts per second, delivery latency, by percentile.
    assert len(charts) >= 4
    empty = [c[:120] for c in charts if "<polyline" not in c and "<circle" not in c]
    assert empty == []
    assert "no data" not in dom.stdout
    assert "Reconnections (" in dom.stdout  # the outage, per client

    artifacts = Path(os.environ.get("ALERTBENCH_ARTIFACTS", ROOT / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "network-report.png"
    taken = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,4000", url)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a page of tables and charts, not a blank one
