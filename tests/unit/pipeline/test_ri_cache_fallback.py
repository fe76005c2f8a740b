"""AlertCache against a fake Redis (explicit seam: the client object).

The fake models the few commands the cache uses, and can be switched "down".
Races against real Redis are in the integration tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from reference_impl.cache import AlertCache
from reference_impl.metrics import Metrics


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.keys: list[str] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def incr(self, key: str) -> None:
        self.keys.append(key)

    async def execute(self) -> list[int]:
        return [await self.redis.incr(k) for k in self.keys]


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise RedisConnectionError("fake redis is down")

    def register_script(self, text: str) -> Callable[..., Awaitable[int]]:
        async def set_if_current(keys: list[str], args: list[Any]) -> int:
            self._check()
            epoch, gen = self.data.get(keys[0], "0"), self.data.get(keys[1], "0")
            if (epoch, gen) == (args[0], args[1]):
                self.data[keys[2]] = f"{args[0]}:{args[1]}:{args[2]}"
                return 1
            return 0

        return set_if_current

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        self._check()
        return [self.data[k].encode() if k in self.data else None for k in keys]

    async def incr(self, key: str) -> int:
        self._check()
        self.data[key] = str(int(self.data.get(key, "0")) + 1)
        return int(self.data[key])

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        self._check()
        return FakePipeline(self)

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Source:
    """The 'database': a list the test changes, and a count of loads."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = [{"id": 1}]
        self.loads = 0

    async def load(self) -> list[dict[str, Any]]:
        self.loads += 1
        return list(self.rows)


@pytest.fixture
def parts() -> tuple[FakeRedis, Clock, Source, AlertCache]:
    redis, clock, source = FakeRedis(), Clock(), Source()
    cache = AlertCache(redis, ttl_s=60, metrics=Metrics(), clock=clock)  # type: ignore[arg-type]
    return redis, clock, source, cache


async def test_miss_then_hit_then_invalidated(
    parts: tuple[FakeRedis, Clock, Source, AlertCache],
) -> None:
    _, _, source, cache = parts
    assert await cache.get_or_load(7, source.load) == ([{"id": 1}], "miss")
    assert await cache.get_or_load(7, source.load) == ([{"id": 1}], "hit")
    source.rows = [{"id": 2}]
    await cache.invalidate([7])
    assert await cache.get_or_load(7, source.load) == ([{"id": 2}], "miss")
    assert source.loads == 2


async def test_redis_down_reads_from_the_source_then_bypasses_until_the_breaker_closes(
    parts: tuple[FakeRedis, Clock, Source, AlertCache],
) -> None:
    redis, clock, source, cache = parts
    redis.down = True
    assert await cache.get_or_load(7, source.load) == ([{"id": 1}], "error")
    assert await cache.get_or_load(7, source.load) == ([{"id": 1}], "bypass")
    redis.down = False
    clock.now += 5
    assert (await cache.get_or_load(7, source.load))[1] == "miss"


async def test_an_invalidation_lost_while_redis_was_down_is_not_a_stale_read_later(
    parts: tuple[FakeRedis, Clock, Source, AlertCache],
) -> None:
    redis, clock, source, cache = parts
    await cache.get_or_load(7, source.load)  # cached: [{"id": 1}]
    redis.down = True
    source.rows = [{"id": 2}]
    await cache.invalidate([7])  # cannot reach Redis
    redis.down = False
    clock.now += 5
    # Redis kept the old entry, but the epoch bump on recovery makes it a miss.
    assert await cache.get_or_load(7, source.load) == ([{"id": 2}], "miss")


async def test_invalidate_does_nothing_with_the_stale_cache_flaw() -> None:
    redis, source = FakeRedis(), Source()
    cache = AlertCache(redis, ttl_s=60, invalidate_on_change=False)  # type: ignore[arg-type]
    await cache.get_or_load(7, source.load)
    source.rows = [{"id": 2}]
    await cache.invalidate([7])
    assert await cache.get_or_load(7, source.load) == ([{"id": 1}], "hit")
