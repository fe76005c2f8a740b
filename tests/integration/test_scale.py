"""The load scenario sharded over two workers: plain processes (``run load
--workers 2``) and a Locust master with two Locust workers, all on 127.0.0.1
against the reference on the embedded stack."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

import scenarios
from harness.history import Op, Receive, read_jsonl
from harness.report import RunResults
from harness.runner import RunOptions, run_scenario
from harness.scenario import LocustOptions, RunParams
from harness.stack import Stack, StackConfig, start_stack

pytestmark = pytest.mark.timeout(240)

SMALL = RunParams(projects=20, rate_per_s=20.0, duration_s=2.0, seed=7, drain_s=10.0, workers=2)


@pytest.fixture(scope="module")
def stack(alertbench_stack_config: StackConfig) -> Iterator[Stack]:
    with start_stack(alertbench_stack_config) as stack:
        yield stack


async def _run(stack: Stack, params: RunParams, tmp_path: Path, name: str) -> RunResults:
    return await run_scenario(
        scenarios.SCENARIOS["load"],
        stack,
        params,
        options=RunOptions(reports_dir=tmp_path),
        run_id=f"test-{name}",
    )


def _assert_judged_as_one(results: RunResults, tmp_path: Path) -> list[Receive]:
    """Both shards worked, the merged history passes every checker, the report exists."""
    assert results.errors == ()
    assert [(c.name, c.summary) for c in results.checks if c.valid is not True] == []
    report = tmp_path / results.run_id
    assert (report / "report.html").stat().st_size > 0
    assert (report / "junit.xml").exists()
    history = read_jsonl(report / "history.jsonl")
    completions = [e for e in history if isinstance(e, Op) and e.f == "complete"]
    by_shard = {e.process.split("/")[0] for e in completions if e.type == "ok"}
    assert by_shard == {"w0", "w1"}
    assert results.generator is not None
    assert results.generator["ok"] == sum(1 for e in completions if e.type == "ok") > 0
    # Every project was completed by one shard only (per-project checkers hold).
    owners: dict[int, set[str]] = {}
    for e in completions:
        if e.type == "invoke":
            owners.setdefault(e.value["project_id"], set()).add(e.process)
    assert owners
    assert all(len(who) == 1 for who in owners.values())
    assert results.resources is not None
    assert {"harness shard 0", "harness shard 1"} <= set(results.resources["roles"])
    # Each shard timed its own collections (young ones happen in any run).
    assert all(s["gc_pauses"]["0"]["collections"] > 0 for s in results.extra["shards"])
    return [e for e in history if isinstance(e, Receive)]


async def test_load_over_two_worker_processes(stack: Stack, tmp_path: Path) -> None:
    results = await _run(stack, SMALL, tmp_path, "processes")
    _assert_judged_as_one(results, tmp_path)
    assert "locust" not in results.extra


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="locust is not installed (pip install -e '.[locust]'; the nox tests session does)",
)
async def test_load_through_a_locust_master_and_two_workers(stack: Stack, tmp_path: Path) -> None:
    params = dataclasses.replace(SMALL, locust=LocustOptions(headless=True, local_workers=2))
    results = await _run(stack, params, tmp_path, "locust")
    receipts = _assert_judged_as_one(results, tmp_path)
    locust = results.extra["locust"]
    # Everything the shards fired reached the master's statistics.
    assert locust["counted"] == locust["expected"] > 0
    rows = {(r["type"], r["name"]): r for r in locust["rows"]}
    pushed = rows[("push", "new_alert")]
    live = [r for r in receipts if r.event == "new_alert" and r.via == "live" and not r.repeat]
    assert pushed["requests"] == len(live) > 0
    assert pushed["failures"] == 0
    # Real latencies, not Locust's stock Socket.IO user's 0.
    assert pushed["avg_ms"] > 0
    assert rows[("push", "workflow_updated")]["avg_ms"] > 0
    assert locust["unmatched_pushes"] == 0
    completed = rows[("POST", "complete")]
    assert results.generator is not None
    assert completed["requests"] == results.generator["completed"]
    assert completed["avg_ms"] > 0
