"""Following queued jobs to their end through the contract's job status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from harness.clients import AppHttp
from harness.history import Op
from harness.scenario import ScenarioContext

__all__ = ["ENDED", "enqueue_completion", "follow_jobs"]

#: The job statuses that are final.
ENDED = frozenset({"complete", "failed", "aborted"})
#: Between two rounds of status reads (a poll, bounded by the caller's timeout).
POLL_S = 0.1


async def enqueue_completion(
    ctx: ScenarioContext, http: AppHttp, project: int, item: int
) -> tuple[Op, str | None, str | None]:
    """Queue the project manager's completion of ``item`` (``?mode=queue``),
    recorded as a ``complete_queued`` operation under process ``q<project>``.
    Returns the operation, the job's id, and why it was refused: a job is
    accepted with 202 only; otherwise its id is None and the operation is
    recorded ``fail`` with that reason (the status and its detail)."""
    op = ctx.history.invoke(
        f"q{project}", "complete_queued", {"project_id": project, "line_item_id": item}
    )
    response = await http.post(
        f"/api/projects/{project}/line-items/{item}/complete?mode=queue",
        headers=ctx.auth(ctx.seeded.members[project]["project_manager"]),
    )
    if response.status != 202 or not isinstance(response.body, dict):
        refused = f"{response.status} {response.detail()}"
        ctx.history.fail(op, refused)
        return op, None, refused
    return op, str(response.body["jobId"]), None


async def follow_jobs(
    ctx: ScenarioContext,
    http: AppHttp,
    jobs: Sequence[tuple[Op, str]],
    auth: Mapping[str, str],
    *,
    timeout_s: float,
) -> dict[str, tuple[str, str | None]]:
    """Read each job's status until it ends, at most ``timeout_s``; record
    its operation ``ok`` (complete), ``fail`` (failed, aborted) or ``info``
    (not ended in time: it may still run). Returns job id -> (last status,
    last error). A read that fails (the app restarting) is tried again."""
    pending = {job_id: op for op, job_id in jobs}
    ended: dict[str, tuple[str, str | None]] = {}
    deadline = time.monotonic() + timeout_s
    while pending:
        for job_id, op in list(pending.items()):
            try:
                response = await http.get(f"/api/queue/jobs/{job_id}", headers=dict(auth))
            except Exception:  # the app may be restarting: read it again next round
                continue
            body = response.body if isinstance(response.body, dict) else {}
            status = str(body.get("status", f"HTTP {response.status}"))
            error = None if body.get("error") is None else str(body.get("error"))
            ended[job_id] = (status, error)
            if status not in ENDED:
                continue
            del pending[job_id]
            value = {
                "attempts": body.get("attempts"),
                "result": body.get("result"),
                "attempt_times_ms": body.get("attemptTimesMs"),
            }
            if status == "complete":
                ctx.history.ok(op, value)
            else:
                ctx.history.fail(op, f"job {status}: {error}", value)
        if not pending:
            break
        if time.monotonic() >= deadline:
            for job_id, op in pending.items():
                status = ended.get(job_id, ("unknown", None))[0]
                ctx.history.info(op, f"job {job_id} {status} after {timeout_s:g} s")
                ended[job_id] = (status, f"still {status} after {timeout_s:g} s")
            break
        await asyncio.sleep(POLL_S)
    return ended
