"""Queued completions on SAQ: attempts with backoff, dead letters, crash safety."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ri_support import Api, StartApi
from saq.job import Status

from harness.contract.seed import SeedResult
from reference_impl import Flaw
from reference_impl.completion import Stage
from reference_impl.db import Connection

JOB_TIMEOUT_S = 30
ENDED = (Status.COMPLETE, Status.FAILED, Status.ABORTED)


class FailFirst:
    """Completion hooks that fail the first ``n`` attempts (after the lock)."""

    def __init__(self, n: int) -> None:
        self.remaining = n

    async def after(self, stage: Stage, project_id: int) -> None:
        if stage == "locked" and self.remaining > 0:
            self.remaining -= 1
            raise RuntimeError("injected failure")


async def _enqueue(api: Api, seeded: SeedResult, line_index: int = 0) -> str:
    pid, item = seeded.project_ids[0], seeded.active_line_items[line_index]
    user = seeded.members[pid]["project_manager"]
    response = await api.http.post(
        f"/api/projects/{pid}/line-items/{item.id}/complete?mode=queue", headers=api.auth(user)
    )
    assert response.status_code == 202
    job_id: str = response.json()["jobId"]
    return job_id


async def _finished(api: Api, job_id: str) -> dict[str, object]:
    """The job, as the API shows it, once it has ended (within JOB_TIMEOUT_S)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOB_TIMEOUT_S
    while True:
        job = await api.runtime.queue.job(job_id)
        assert job is not None
        if job.status in ENDED:
            response = await api.http.get(f"/api/queue/jobs/{job_id}", headers=api.auth(1))
            body: dict[str, object] = response.json()
            if body["status"] in {s.value for s in ENDED}:
                return body
        remaining = deadline - loop.time()
        assert remaining > 0, f"job {job_id} still {job.status.value} after {JOB_TIMEOUT_S} s"
        await job.refresh(until_complete=remaining)


async def _current(conn: Connection, seeded: SeedResult) -> int | None:
    value: int | None = await conn.fetchval(
        "SELECT current_line_item_id FROM project_workflow_trackers WHERE project_id = $1",
        seeded.project_ids[0],
    )
    return value


async def test_a_queued_completion_runs_on_the_worker(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api = await start_api(run_worker=True)
    job = await _finished(api, await _enqueue(api, seeded))
    assert job["status"] == "complete"
    assert job["attempts"] == 1
    assert job["result"]["outcome"] == "completed"  # type: ignore[index]
    assert await _current(conn, seeded) == seeded.active_line_items[1].id
    alerts = await conn.fetchval(
        "SELECT count(*) FROM workflow_alerts WHERE project_id = $1", seeded.project_ids[0]
    )
    assert alerts == 1  # the next step's alert, created once


async def test_the_sweep_spares_a_job_a_worker_has_just_dequeued(
    api: Api, seeded: SeedResult
) -> None:
    """A worker moves a job into the active list, then marks it active a round
    trip later. SAQ's own sweep, run in between, re-queued the running job; its
    re-run reported ``stale`` with one attempt though the job had completed
    the step (the queue scenario's failure in 1 run of 20). Forced here: the
    job is dequeued as a worker would and never marked."""
    job_id = await _enqueue(api, seeded)
    queue = api.runtime.queue.queue
    dequeued = await queue.dequeue(timeout=JOB_TIMEOUT_S)
    assert dequeued is not None
    assert dequeued.status == Status.QUEUED
    assert await queue.sweep() == []
    stored = await queue.job(job_id)
    assert stored is not None
    assert stored.status == Status.QUEUED
    assert stored.error is None
    # A worker that died between the two steps never marks it: the next
    # sweep (its lock, held for the sweep interval, let go here) finds the
    # job unchanged and queues it again, and it runs to completion.
    await queue.redis.delete(queue.namespace("sweep"))
    assert await queue.sweep() == [dequeued.id]
    api.runtime.start_worker()
    job = await _finished(api, job_id)
    assert job["status"] == "complete"
    assert job["attempts"] == 1
    assert job["result"]["outcome"] == "completed"  # type: ignore[index]


async def test_transient_failures_are_retried_with_backoff_until_success(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api = await start_api(run_worker=True, hooks=FailFirst(2))
    job = await _finished(api, await _enqueue(api, seeded))
    assert job["status"] == "complete"
    assert job["attempts"] == 3
    assert await _current(conn, seeded) == seeded.active_line_items[1].id
    metrics = (await api.http.get("/metrics")).text
    assert "alertbench_queue_retries_total 2.0" in metrics


async def test_a_job_failing_every_attempt_lands_in_the_dead_letter_list(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api = await start_api(run_worker=True, hooks=FailFirst(10))
    job_id = await _enqueue(api, seeded)
    job = await _finished(api, job_id)
    assert job["status"] == "failed"
    assert job["attempts"] == 3
    letters = await api.http.get("/api/queue/dead-letters", headers=api.auth(1))
    [letter] = letters.json()["deadLetters"]
    assert letter["jobId"] == job_id
    assert "injected failure" in letter["error"]
    assert await _current(conn, seeded) == seeded.active_line_items[0].id
    assert "alertbench_queue_dead_letters_total 1.0" in (await api.http.get("/metrics")).text


async def test_no_retry_flaw_gives_up_after_one_attempt(
    start_api: StartApi, seeded: SeedResult
) -> None:
    api = await start_api(run_worker=True, hooks=FailFirst(1), flaws=frozenset({Flaw.NO_RETRY}))
    job = await _finished(api, await _enqueue(api, seeded))
    assert job["status"] == "failed"
    assert job["attempts"] == 1


async def test_running_a_job_twice_changes_nothing(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api = await start_api(run_worker=True)
    first = await _finished(api, await _enqueue(api, seeded))
    state = await conn.fetch("SELECT id, status, step_id FROM workflow_alerts ORDER BY id")
    second = await _finished(api, await _enqueue(api, seeded))
    assert first["result"] == {
        "outcome": "completed",
        "nextLineItemId": seeded.active_line_items[1].id,
        "alertId": 1,
    }
    assert isinstance(second["result"], dict)
    assert second["result"]["outcome"] == "stale"
    assert await conn.fetch("SELECT id, status, step_id FROM workflow_alerts ORDER BY id") == state
    assert await _current(conn, seeded) == seeded.active_line_items[1].id


async def test_a_worker_killed_mid_job_does_not_lose_the_job(
    api: Api, pg_dsn: str, redis_url: str, conn: Connection, seeded: SeedResult
) -> None:
    job_id = await _enqueue(api, seeded)
    script = Path(__file__).with_name("ri_blocking_worker.py")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(script), pg_dsn, redis_url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), timeout=JOB_TIMEOUT_S)
        assert line == b"locked\n"
    finally:
        worker.kill()
        await asyncio.wait_for(worker.wait(), timeout=JOB_TIMEOUT_S)
    # The killed worker's transaction rolled back; its job is still owed.
    assert await _current(conn, seeded) == seeded.active_line_items[0].id
    api.runtime.start_worker()
    job = await _finished(api, job_id)
    assert job["status"] == "complete"
    assert job["attempts"] >= 2  # type: ignore[operator]
    assert await _current(conn, seeded) == seeded.active_line_items[1].id
    active = await conn.fetchval(
        "SELECT count(*) FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE'",
        seeded.project_ids[0],
    )
    assert active == 1
