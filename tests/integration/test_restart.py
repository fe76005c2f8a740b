"""The app's processes can be SIGKILLed and started again (the ``restart``
capability), as ``chaos`` does: same port, same proxy, nothing of the dead
process's work half-applied, and a job its worker died in still done once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from harness.contract.seed import SeedResult, SeedSpec, seed_dsn
from harness.stack import AppSpec, Stack, StackConfig, start_stack
from harness.stack._process import RECORD
from harness.targets import load_target
from harness.workload.barrier import CommitGate

#: Bound of each wait below (a job's heartbeat of 5 s must expire first).
WAIT_S = 60.0
_ENDED = {"complete", "failed", "aborted"}


@pytest.fixture
def stack(tmp_root: Path) -> Iterator[Stack]:
    with start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack:
        yield stack


def _recorded_pids(stack: Stack) -> dict[str, int]:
    assert stack.run_dir is not None
    record = json.loads((stack.run_dir.path / RECORD).read_text())
    return {str(c["name"]): int(c["pid"]) for c in record["children"]}


async def _healthy(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        try:
            return (await http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False


async def test_a_killed_app_process_comes_back_on_its_port_behind_its_proxy(
    stack: Stack,
) -> None:
    url = stack.start_app(AppSpec(worker=False, queue_workers=1))
    assert stack.app is not None
    assert stack.app.names == ["app", "worker"]
    before = _recorded_pids(stack)
    assert await _healthy(url)

    stack.kill_process("app")
    assert not stack.app.process("app").alive()
    assert not await _healthy(url)  # the proxy has nothing behind it
    stack.restart_process("app")

    assert await _healthy(url)  # the same proxied URL: same port behind it
    after = _recorded_pids(stack)
    assert after["app"] != before["app"]
    assert after["worker"] == before["worker"]  # the worker was left alone
    # The ownership record names the new process only (the reaper's proof).
    assert stack.app.process("app").pid == after["app"]
    assert list(after).count("app") == 1


async def test_restarting_a_live_process_or_an_unknown_one_is_refused(stack: Stack) -> None:
    stack.start_app(AppSpec())
    with pytest.raises(Exception, match="still running: kill it first"):
        stack.restart_process("app")
    with pytest.raises(Exception, match=r"no app process named 'worker' \(there are: \['app'\]\)"):
        stack.kill_process("worker")


async def _seed(stack: Stack, database: str) -> tuple[str, SeedResult]:
    dsn = stack.postgres_direct.dsn_for(database)
    return dsn, await seed_dsn(dsn, SeedSpec(projects=3, seed=3))


async def test_a_job_whose_worker_is_killed_mid_job_is_done_once_after_the_restart(
    stack: Stack,
) -> None:
    target = load_target("reference")
    secret = target.new_secret()
    stack.start_app(AppSpec(worker=False, queue_workers=1, token_secret=secret))
    assert stack.app is not None
    dsn, seeded = await _seed(stack, stack.app.spec.database)
    project, first, second = (
        seeded.project_ids[0],
        seeded.active_line_items[0].id,
        seeded.active_line_items[1].id,
    )
    token = target.tokens(secret).mint(seeded.members[project]["project_manager"])
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.app.direct_urls[0], timeout=10) as http:
        async with CommitGate(dsn, "projects", [project]) as gate:
            queued = await http.post(
                f"/api/projects/{project}/line-items/{first}/complete?mode=queue", headers=auth
            )
            assert queued.status_code == 202, queued.text
            job = queued.json()["jobId"]
            # The job's transaction waits on the project's row: it is mid-job.
            await gate.wait_for_blocked(1, timeout_s=WAIT_S)
            stack.kill_process("worker")
        stack.restart_process("worker")

        deadline = time.monotonic() + WAIT_S
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            body = (await http.get(f"/api/queue/jobs/{job}", headers=auth)).json()
            if body["status"] in _ENDED:
                break
            await asyncio.sleep(0.2)  # between two reads of the status; bounded by WAIT_S
    assert body["status"] == "complete", body
    attempts = body["attempts"]
    assert isinstance(attempts, int)
    assert attempts >= 2
    conn = await asyncpg.connect(dsn)
    try:
        current = await conn.fetchval(
            "SELECT current_line_item_id FROM project_workflow_trackers WHERE project_id = $1",
            project,
        )
        active = await conn.fetch(
            "SELECT step_id FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE'",
            project,
        )
    finally:
        await conn.close()
    assert current == second  # moved exactly one step
    assert [r["step_id"] for r in active] == [second]


async def test_the_logs_of_a_stopped_app_hold_every_life_of_its_processes_and_no_earlier_app(
    stack: Stack,
) -> None:
    ready = b"worker running on queue"
    stack.start_app(AppSpec(worker=False, queue_workers=1))
    stack.kill_process("worker")
    stack.restart_process("worker")
    stack.stop_app()
    logs = stack.take_app_logs()
    assert set(logs) == {"app", "worker"}
    assert logs["worker"].count(ready) == 2  # before the kill, and after the restart
    assert stack.take_app_logs() == {}  # given once

    # The next app appends to the same files: its logs start where it started.
    stack.start_app(AppSpec(worker=False, queue_workers=1))
    stack.stop_app()
    assert stack.take_app_logs()["worker"].count(ready) == 1
