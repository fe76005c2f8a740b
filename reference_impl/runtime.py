"""Runtime: the composition root of one pipeline process.

Owns the Postgres pool, the cache, the metrics and the completion queue, and
wraps the pure services (generation, completion) with what a request needs
around them: a pooled connection, query counting, latency, cache invalidation
after commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError
from saq.types import Context
from saq.worker import Worker

from reference_impl import db
from reference_impl.alerts import ALERT_COLUMNS, Alert, AlertEmitter, NullEmitter
from reference_impl.cache import AlertCache, CacheResult, connect_redis
from reference_impl.completion import (
    CompletionHooks,
    CompletionResult,
    NoHooks,
    RandomRollback,
    complete_line_item,
)
from reference_impl.config import AppConfig
from reference_impl.flaws import Flaw
from reference_impl.generation import GenerationResult, generate_alerts
from reference_impl.metrics import Metrics
from reference_impl.queue import CompletionQueue
from reference_impl.schema import migrate

__all__ = ["USER_ALERTS_LIMIT", "Runtime"]

logger = logging.getLogger(__name__)

USER_ALERTS_LIMIT = 500
_USER_ALERTS_SQL = f"""
SELECT {ALERT_COLUMNS} FROM workflow_alerts
WHERE assigned_to_id = $1 AND status = 'ACTIVE'
ORDER BY created_at DESC, id DESC LIMIT {USER_ALERTS_LIMIT}
"""


class Runtime:
    """Everything one process needs; build with ``await Runtime.start(config)``."""

    def __init__(
        self,
        config: AppConfig,
        *,
        pool: db.Pool,
        cache: AlertCache,
        queue: CompletionQueue,
        metrics: Metrics,
        hooks: CompletionHooks,
        emitter: AlertEmitter,
    ) -> None:
        self.config = config
        self.pool = pool
        self.cache = cache
        self.queue = queue
        self.metrics = metrics
        self.hooks = hooks
        self.emitter = emitter
        self._worker: Worker[Context] | None = None
        self._kept: list[bytes] = []  # the memory_leak flaw's
        self._worker_task: asyncio.Task[None] | None = None
        self._unwatch_gc = metrics.watch_gc()

    @classmethod
    async def start(
        cls,
        config: AppConfig,
        *,
        hooks: CompletionHooks | None = None,
        emitter: AlertEmitter | None = None,
        metrics: Metrics | None = None,
    ) -> Runtime:
        """Connect, migrate (if configured) and start the worker (if configured)."""
        metrics = metrics or Metrics()
        pool = await db.create_pool(
            config.pg_dsn,
            min_size=config.pg_pool_min_size,
            max_size=config.pg_pool_max_size,
            command_timeout_s=config.pg_command_timeout_s,
        )
        try:
            if config.migrate_on_start:
                async with pool.acquire() as conn:
                    await migrate(conn, unique_active_alert=not config.has(Flaw.NO_UNIQUE_INDEX))
            cache = AlertCache(
                connect_redis(config.redis_url, timeout_s=config.redis_timeout_s),
                ttl_s=config.cache_ttl_s,
                metrics=metrics,
                invalidate_on_change=not config.has(Flaw.STALE_CACHE),
                fallback=not config.has(Flaw.NO_CACHE_FALLBACK),
            )
            queue = CompletionQueue(config, metrics=metrics)
            await queue.connect()
        except BaseException:
            await pool.close()
            raise
        runtime = cls(
            config,
            pool=pool,
            cache=cache,
            queue=queue,
            metrics=metrics,
            hooks=hooks
            or (
                RandomRollback(config.inject_rollback_rate, seed=config.inject_seed)
                if config.inject_rollback_rate > 0
                else NoHooks()
            ),
            emitter=emitter or NullEmitter(),
        )
        if config.run_worker:
            runtime.start_worker()
        logger.info("runtime started (flaws: %s)", ", ".join(sorted(config.flaws)) or "none")
        return runtime

    def start_worker(self) -> None:
        """Run a queue worker in this event loop (idempotent)."""
        if self._worker is not None:
            return
        self._worker = self.queue.worker(self._run_completion)
        self._worker_task = asyncio.create_task(self._worker.start(), name="saq-worker")

    async def stop_worker(self) -> None:
        if self._worker is None:
            return
        await self._worker.stop()
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._worker_task, timeout=5.0)
        self._worker = None
        self._worker_task = None

    async def close(self) -> None:
        """Stop the worker and close every connection; one failure does not leak the rest."""
        self._unwatch_gc()
        for step in (self.stop_worker, self.queue.close, self.cache.close, self.pool.close):
            try:
                await step()
            except (OSError, RedisError, db.PostgresError, db.InterfaceError) as exc:
                logger.warning("shutdown step %s failed: %r", step.__qualname__, exc)

    async def _run_completion(
        self, project_id: int, line_item_id: int, user_id: int
    ) -> CompletionResult:
        return await self.complete(project_id, line_item_id, user_id)

    async def generate(self, project_ids: Sequence[int]) -> GenerationResult:
        """Batch generation, measured and followed by cache invalidation."""
        started = time.perf_counter()
        async with self.pool.acquire() as conn, db.counting(conn) as counter:
            result = await generate_alerts(conn, project_ids, flaws=self.config.flaws)
        self.metrics.alert_generation_seconds.labels("generate").observe(
            time.perf_counter() - started
        )
        self.metrics.db_queries_per_request.labels("generate").observe(counter.count)
        self.metrics.alerts_created.labels("generate").inc(len(result.created))
        self.metrics.duplicates_prevented.inc(result.duplicates_prevented)
        await self.cache.invalidate(a.assigned_to_id for a in result.created if a.assigned_to_id)
        return result

    async def complete(self, project_id: int, line_item_id: int, user_id: int) -> CompletionResult:
        """One completion transaction, then cache invalidation of the affected users."""
        started = time.perf_counter()
        outcome = "error"
        try:
            async with self.pool.acquire() as conn, db.counting(conn) as counter:
                try:
                    result = await complete_line_item(
                        conn,
                        project_id=project_id,
                        line_item_id=line_item_id,
                        user_id=user_id,
                        flaws=self.config.flaws,
                        hooks=self.hooks,
                        emitter=self.emitter,
                    )
                finally:
                    self.metrics.db_queries_per_request.labels("complete").observe(counter.count)
            outcome = "ok"
        except Exception as exc:
            outcome = {403: "forbidden", 404: "not_found", 409: "stale"}.get(
                getattr(exc, "status", 0), "error"
            )
            raise
        finally:
            self.metrics.completions.labels(outcome).inc()
        self.metrics.alert_generation_seconds.labels("complete").observe(
            time.perf_counter() - started
        )
        if Flaw.MEMORY_LEAK in self.config.flaws:
            self._kept.append(b"x" * 65536)  # the flaw: 64 KB written, never freed
        if result.alert is not None:
            self.metrics.alerts_created.labels("complete").inc()
        await self.cache.invalidate(result.affected_user_ids)
        return result

    async def load_user_alerts(self, user_id: int) -> list[dict[str, Any]]:
        """The user's ACTIVE alerts from Postgres, newest first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_USER_ALERTS_SQL, user_id)
        return [Alert.from_row(r).to_json() for r in rows]

    async def user_alerts(self, user_id: int) -> tuple[list[dict[str, Any]], CacheResult]:
        """The user's ACTIVE alerts through the cache."""

        async def load() -> list[dict[str, Any]]:
            return await self.load_user_alerts(user_id)

        return await self.cache.get_or_load(user_id, load)

    async def healthy(self) -> bool:
        """Postgres answers within a second."""
        try:
            async with asyncio.timeout(1.0), self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except (OSError, TimeoutError, db.PostgresError, db.InterfaceError):
            return False
        return True
