"""Queued completions on SAQ (Redis): attempts, backoff, dead letters, sweeping.

Why SAQ rather than arq: SAQ is closest to the seed's Bull - per-job retries
with exponential backoff, timeouts, heartbeats, a sweep that re-queues the
jobs of a dead worker, job status you can query and listen to, and a typed
API. arq re-runs jobs of a dead worker too, but has no heartbeat/sweep model
or queryable per-job status, and its retry needs the job to raise ``Retry``.

A job is ``complete_line_item(project_id, line_item_id, user_id)``. Running it
twice changes nothing: the second run meets a stale line item and reports
``stale`` without touching any row. Rejections (no such project, not a member)
are final: they go to the dead-letter state without retries.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis import asyncio as aioredis
from saq.job import Job, Status
from saq.queue.redis import RedisQueue
from saq.types import Context, PartialTimersDict
from saq.utils import now_seconds
from saq.worker import Worker

from reference_impl.completion import CompletionError, CompletionResult, StaleCompletion
from reference_impl.config import AppConfig
from reference_impl.flaws import Flaw
from reference_impl.metrics import Metrics

__all__ = [
    "ATTEMPT_TIMES_META",
    "COMPLETE_FUNCTION",
    "DEAD_LETTER_STATUSES",
    "CompletionQueue",
    "DeadLetter",
    "RunCompletion",
]

logger = logging.getLogger(__name__)

COMPLETE_FUNCTION = "complete_line_item"
ATTEMPT_TIMES_META = "attempt_times_ms"
"""Key of ``Job.meta``: each attempt's ``[start, end]`` in epoch milliseconds."""
DEAD_LETTER_STATUSES = (Status.FAILED, Status.ABORTED)
"""SAQ's unsuccessful terminal states: what this module calls dead letters."""

RunCompletion = Callable[[int, int, int], Awaitable[CompletionResult]]
"""(project_id, line_item_id, user_id) -> committed result (the runtime's service)."""

_SCHEDULE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('PSETEX', KEYS[1], ARGV[1], 1)
    local jobs = redis.call('ZRANGEBYSCORE', KEYS[2], 1, ARGV[2])
    for _, v in ipairs(jobs) do
        redis.call('ZADD', KEYS[2], 0, v)
        redis.call('RPUSH', KEYS[3], v)
    end
    return jobs
end
"""


#: Under the sweep lock (SAQ's own script, unchanged): the active list and
#: each job's record, read at once.
_SWEEP_SCRIPT = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""


class _Queue(RedisQueue):
    """SAQ's Redis queue with sub-second scheduling and a sweep that spares
    jobs a live worker has just dequeued.

    SAQ's own ``schedule``/``sweep`` take their lock in whole seconds, which
    would round millisecond retry delays up to a second.

    SAQ's sweep treats every job in the active list that is not marked active
    as abandoned. But a worker moves a job into that list first and marks it
    active a Redis round trip later: a sweep in between aborts and re-queues a
    job that is running. The re-run then finds its step done and the job
    reports ``stale`` with one attempt, though it did complete the step
    (saq issues #124, #277; alertbench's ``queue`` scenario caught it in 1 run
    of 20). Here such a job is swept only if a later sweep finds it still
    unstarted and unchanged: its worker died between the two steps.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        name: str,
        schedule_lock_ms: int,
        sweep_abort_s: float,
        sweep: bool = True,
    ) -> None:
        super().__init__(client, name=name)
        self._schedule_lock_ms = max(1, schedule_lock_ms)
        self._sweep_abort_s = sweep_abort_s
        self._sweeping = sweep
        self._my_schedule = client.register_script(_SCHEDULE_SCRIPT)
        self._my_sweep = client.register_script(_SWEEP_SCRIPT)
        #: Jobs the last sweep found dequeued but not started: id -> (attempts, touched).
        self._unstarted: dict[bytes, tuple[int, int]] = {}

    async def schedule(self, lock: int = 1) -> list[str]:
        ids = await self._my_schedule(
            keys=[
                self.namespace("schedule"),
                self.namespace("incomplete"),
                self.namespace("queued"),
            ],
            args=[self._schedule_lock_ms, now_seconds()],
        )
        return [i.decode() for i in ids or []]

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if not self._sweeping:  # Flaw.NO_SWEEP: a dead worker's jobs stay active
            return []
        found = await self._my_sweep(
            keys=[self._sweep, self._active], args=[max(1, int(lock))], client=self.redis
        )
        seen, self._unstarted = self._unstarted, {}
        swept: list[bytes] = []
        for job_id, payload in found or []:
            job = self.deserialize(payload)
            if job is None:  # its record expired: drop the id
                swept.append(job_id)
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(self._active, 0, job_id)
                    pipe.zrem(self._incomplete, job_id)
                    await pipe.execute()
                continue
            if job.status == Status.ACTIVE and not job.stuck:
                continue  # running, its heartbeat fresh
            if job.status != Status.ACTIVE and not job.stuck:
                mark = (job.attempts, job.touched)
                if seen.get(job_id) != mark:  # maybe a worker about to start it
                    self._unstarted[job_id] = mark
                    continue
            swept.append(job_id)
            logger.info("Sweeping job %s", job.info(logger.isEnabledFor(logging.DEBUG)))
            await self.abort(job, error=self.swept_error_message)
            try:
                await job.refresh(self._sweep_abort_s)
            except TimeoutError:
                logger.info("Could not abort job %s", job.key)
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        return [job_id.decode() for job_id in swept]


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A job that will not run again on its own."""

    key: str
    status: str
    attempts: int
    kwargs: dict[str, Any]
    error: str
    """The last line of the last error (full trace in the SAQ job)."""


class _Permanent(Exception):
    """A rejection that retrying cannot fix."""


class CompletionQueue:
    """Enqueue completions, run a worker, list dead letters."""

    def __init__(self, config: AppConfig, *, metrics: Metrics | None = None) -> None:
        self._config = config
        self._metrics = metrics
        self.queue = _Queue(
            aioredis.Redis.from_url(config.redis_url, socket_connect_timeout=5.0),
            name=config.queue_name,
            schedule_lock_ms=int(config.queue_schedule_interval_s * 1000),
            sweep_abort_s=min(1.0, config.queue_sweep_interval_s),
            sweep=not config.has(Flaw.NO_SWEEP),
        )
        self._attempts = 1 if config.has(Flaw.NO_RETRY) else config.queue_attempts
        self._no_backoff = config.has(Flaw.NO_BACKOFF)

    async def connect(self) -> None:
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue_completion(self, *, project_id: int, line_item_id: int, user_id: int) -> str:
        """Queue a completion; returns the job key. A pending duplicate is not queued twice."""
        key = f"complete:{project_id}:{line_item_id}"
        await self.queue.enqueue(
            COMPLETE_FUNCTION,
            key=key,
            project_id=project_id,
            line_item_id=line_item_id,
            user_id=user_id,
            retries=self._attempts,
            retry_delay=0.0 if self._no_backoff else self._config.queue_retry_base_delay_s,
            retry_backoff=not self._no_backoff,
            timeout=self._config.queue_job_timeout_s,
            heartbeat=self._config.queue_heartbeat_s,
            ttl=self._config.queue_job_ttl_s,
        )
        return key

    async def job(self, key: str) -> Job | None:
        return await self.queue.job(key)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Failed and aborted jobs, at most ``limit`` (a bounded SCAN)."""
        found: list[DeadLetter] = []
        async for job in self.queue.iter_jobs(statuses=list(DEAD_LETTER_STATUSES)):
            error = (job.error or "").strip().splitlines()
            found.append(
                DeadLetter(
                    key=job.key,
                    status=job.status.value,
                    attempts=job.attempts,
                    kwargs=dict(job.kwargs or {}),
                    error=error[-1] if error else "",
                )
            )
            if len(found) >= limit:
                break
        return sorted(found, key=lambda d: d.key)

    def worker(self, run: RunCompletion, *, concurrency: int | None = None) -> Worker[Context]:
        """A SAQ worker for this queue; start it with ``await worker.start()``."""

        async def complete_line_item(
            ctx: Context, *, project_id: int, line_item_id: int, user_id: int
        ) -> dict[str, Any]:
            job = ctx.get("job")
            started_ms = time.time() * 1000.0
            try:
                return await attempt(ctx, project_id, line_item_id, user_id)
            finally:
                # Each attempt's [start, end] (epoch ms), saved with the job:
                # the job status shows them (the contract's attemptTimesMs).
                if job is not None:
                    times = job.meta.setdefault(ATTEMPT_TIMES_META, [])
                    times.append([round(started_ms, 3), round(time.time() * 1000.0, 3)])

        async def attempt(
            ctx: Context, project_id: int, line_item_id: int, user_id: int
        ) -> dict[str, Any]:
            try:
                result = await run(project_id, line_item_id, user_id)
            except StaleCompletion as exc:
                # Already done (or never due): a re-run must change nothing.
                return {"outcome": "stale", "detail": str(exc)}
            except CompletionError as exc:
                job = ctx.get("job")
                if job is not None:
                    job.retries = job.attempts  # final: straight to the dead-letter state
                raise _Permanent(str(exc)) from exc
            return {
                "outcome": "completed",
                "nextLineItemId": result.next_line_item_id,
                "alertId": result.alert.id if result.alert else None,
            }

        async def after_process(ctx: Context) -> None:
            job = ctx.get("job")
            if job is None or self._metrics is None:
                return
            if job.status == Status.COMPLETE:
                self._metrics.queue_jobs.labels("complete").inc()
            elif job.status == Status.QUEUED:
                self._metrics.queue_jobs.labels("retried").inc()
                self._metrics.queue_retries.inc()
            elif job.status in DEAD_LETTER_STATUSES:
                self._metrics.queue_jobs.labels(job.status.value).inc()
                self._metrics.queue_dead_letters.inc()

        timers = cast(
            PartialTimersDict,
            {
                "schedule": self._config.queue_schedule_interval_s,
                "sweep": self._config.queue_sweep_interval_s,
                "abort": 1,
                "worker_info": 10,
            },
        )
        worker: Worker[Context] = Worker(
            self.queue,
            [(COMPLETE_FUNCTION, complete_line_item)],
            concurrency=concurrency or self._config.worker_concurrency,
            after_process=after_process,
            timers=timers,
            dequeue_timeout=1.0,
        )
        # The host process (uvicorn, or the test) owns SIGINT/SIGTERM.
        worker.SIGNALS = []
        return worker
