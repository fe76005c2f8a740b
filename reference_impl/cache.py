"""The per-user alert list cache (Redis), safe against the slow-reader race.

Each cached value is stamped with the user's *generation* (and a global
*epoch*). A change that affects a user increments that user's generation after
its transaction commits; a value whose stamp is not current is a miss. The
write after a miss is conditional (a Lua script compares the stamp it read
with the current one), so a slow reader that loaded the old rows before the
change cannot put them back after the invalidation.

If Redis is unreachable, reads come from Postgres (never an error) and the
cache stays bypassed for ``breaker_s``. An invalidation that could not reach
Redis marks the cache *dirty*: the next successful call bumps the epoch
first, which turns every cached value into a miss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from reference_impl.fastjson import dumps, loads_own
from reference_impl.metrics import Metrics

__all__ = ["AlertCache", "CacheResult", "connect_redis"]

logger = logging.getLogger(__name__)

CacheResult = Literal["hit", "miss", "bypass", "error"]
_PREFIX = "alertbench:alerts"
_EPOCH_KEY = f"{_PREFIX}:epoch"
_SET_IF_CURRENT = """
local e = redis.call('GET', KEYS[1]) or '0'
local g = redis.call('GET', KEYS[2]) or '0'
if e == ARGV[1] and g == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3], 'EX', ARGV[4])
  return 1
end
return 0
"""

Loader = Callable[[], Awaitable[list[dict[str, Any]]]]


def connect_redis(url: str, *, timeout_s: float) -> aioredis.Redis:
    """A client that fails fast: bounded timeouts and no hidden retries."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def _gen_key(user_id: int) -> str:
    return f"{_PREFIX}:gen:{user_id}"


def _val_key(user_id: int) -> str:
    return f"{_PREFIX}:val:{user_id}"


def _text(value: bytes | str | None) -> str:
    if value is None:
        return "0"
    return value.decode() if isinstance(value, bytes) else value


class AlertCache:
    """Read-through cache of ``GET /api/users/{id}/alerts``."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_s: int,
        metrics: Metrics | None = None,
        invalidate_on_change: bool = True,
        breaker_s: float = 1.0,
        fallback: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``invalidate_on_change=False`` is the ``stale_cache`` flaw,
        ``fallback=False`` the ``no_cache_fallback`` one (a Redis failure
        fails the read instead of falling back to Postgres)."""
        self._redis = client
        self._ttl_s = ttl_s
        self._metrics = metrics
        self._invalidate_on_change = invalidate_on_change
        self._breaker_s = breaker_s
        self._fallback = fallback
        self._clock = clock
        self._open_until = 0.0
        self._dirty = False
        self._set_script = client.register_script(_SET_IF_CURRENT)

    def _count(self, result: CacheResult) -> None:
        if self._metrics is not None:
            self._metrics.cache_requests.labels(result).inc()

    def _trip(self, what: str, exc: Exception) -> None:
        logger.warning(
            "redis %s failed (%s); bypassing the cache for %.1fs", what, exc, self._breaker_s
        )
        self._open_until = self._clock() + self._breaker_s

    @property
    def bypassed(self) -> bool:
        """True while the breaker is open (recent Redis failure)."""
        return self._clock() < self._open_until

    async def _clean(self) -> None:
        if self._dirty:
            await self._redis.incr(_EPOCH_KEY)
            self._dirty = False
            logger.info("cache epoch bumped after missed invalidations")

    async def get_or_load(
        self, user_id: int, load: Loader
    ) -> tuple[list[dict[str, Any]], CacheResult]:
        """The user's alert list and where it came from; ``load`` reads Postgres."""
        if self.bypassed:
            self._count("bypass")
            return await load(), "bypass"
        try:
            await self._clean()
            epoch_b, gen_b, value = await self._redis.mget(
                [_EPOCH_KEY, _gen_key(user_id), _val_key(user_id)]
            )
        except RedisError as exc:
            if not self._fallback:
                self._count("error")
                raise  # the flaw: the read fails with the cache
            self._trip("read", exc)
            self._count("error")
            return await load(), "error"
        epoch, gen = _text(epoch_b), _text(gen_b)
        if value is not None:
            stamp_epoch, stamp_gen, payload = _text(value).split(":", 2)
            if (stamp_epoch, stamp_gen) == (epoch, gen):
                self._count("hit")
                data: list[dict[str, Any]] = loads_own(payload)
                return data, "hit"
        data = await load()
        try:
            await self._set_script(
                keys=[_EPOCH_KEY, _gen_key(user_id), _val_key(user_id)],
                args=[epoch, gen, dumps(data).decode(), self._ttl_s],
            )
        except RedisError as exc:
            self._trip("write", exc)
        self._count("miss")
        return data, "miss"

    async def invalidate(self, user_ids: Iterable[int]) -> None:
        """Make every cached list of these users a miss (call after commit)."""
        ids = sorted(set(user_ids))
        if not ids or not self._invalidate_on_change:
            return
        if self.bypassed:
            self._dirty = True
            return
        try:
            await self._clean()
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in ids:
                    pipe.incr(_gen_key(user_id))
                await pipe.execute()
        except RedisError as exc:
            self._dirty = True
            self._trip("invalidate", exc)
            if self._metrics is not None:
                self._metrics.cache_invalidation_errors.inc()

    async def close(self) -> None:
        await self._redis.aclose()
