"""Resource growth over a long run: app memory and file descriptors, Postgres
connections, Redis memory, sampled on a fixed interval; slopes against bounds.

A soak fails not on a level but on a trend: after a warm-up, the least-squares
slope of each series (per minute) must stay within its bound. Only what can
be measured here is: app processes the stack started (RSS and open file
descriptors, with their children), Postgres connections to the scenario's
database (``pg_stat_activity``), Redis ``used_memory`` (``INFO memory``). A
series that cannot be read (an external or Docker service, a url target's
app) is listed as unmeasured, never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import psutil
import redis.asyncio as aioredis

__all__ = ["GROWTH_BOUNDS", "GrowthSample", "Sampler", "judge_growth", "slope_per_min"]

logger = logging.getLogger(__name__)

GROWTH_BOUNDS: Final[dict[str, float]] = {
    "app_rss_mb": 16.0,
    "app_fds": 10.0,
    "pg_connections": 2.0,
    "redis_used_mb": 8.0,
}
"""Largest tolerated slope of each series after the warm-up, per minute: a
leak of 64 KB per completion at 20 completions/s is 75 MB a minute; a steady
process wanders by a few MB as its allocator and collector settle."""

UNITS: Final[dict[str, str]] = {
    "app_rss_mb": "MB",
    "app_fds": "descriptors",
    "pg_connections": "connections",
    "redis_used_mb": "MB",
}


@dataclass(frozen=True)
class GrowthSample:
    """One sample: seconds since the sampler started, and each series' value."""

    t_s: float
    values: dict[str, float]


def _app_usage(pids: Sequence[int]) -> tuple[float, float] | None:
    """(RSS in MB, open file descriptors) of the processes and their children."""
    rss = fds = 0.0
    seen = False
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for member in family:
            try:
                rss += member.memory_info().rss / 1e6
                fds += member.num_fds()
                seen = True
            except psutil.Error:
                continue
    return (rss, fds) if seen else None


@dataclass
class Sampler:
    """Sample the series every ``interval_s`` while running (``async with``)."""

    app_pids: Callable[[], Sequence[int]]
    pg_dsn: str | None
    redis_url: str | None
    interval_s: float = 1.0
    samples: list[GrowthSample] = field(default_factory=list)
    unmeasured: dict[str, str] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sampler]:
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {self.interval_s}")
        pg = await asyncpg.connect(self.pg_dsn, timeout=10.0) if self.pg_dsn else None
        rd = aioredis.Redis.from_url(self.redis_url) if self.redis_url else None
        if pg is None:
            self.unmeasured["pg_connections"] = "no direct Postgres address"
        if rd is None:
            self.unmeasured["redis_used_mb"] = "no direct Redis address"
        self._task = asyncio.create_task(self._loop(pg, rd))
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if pg is not None:
                await pg.close(timeout=10.0)
            if rd is not None:
                await rd.aclose()

    async def _loop(self, pg: asyncpg.Connection | None, rd: aioredis.Redis | None) -> None:
        t0 = time.monotonic()
        while True:
            started = time.monotonic()
            values: dict[str, float] = {}
            app = _app_usage(self.app_pids())
            if app is None:
                self.unmeasured.setdefault("app_rss_mb", "no local app process")
                self.unmeasured.setdefault("app_fds", "no local app process")
            else:
                values["app_rss_mb"], values["app_fds"] = app
            if pg is not None:
                with contextlib.suppress(Exception):
                    # Less this sampler's own connection.
                    count = await pg.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    )
                    values["pg_connections"] = float(count) - 1.0
            if rd is not None:
                with contextlib.suppress(Exception):
                    info = await rd.info("memory")
                    values["redis_used_mb"] = float(info["used_memory"]) / 1e6
            self.samples.append(GrowthSample(round(started - t0, 3), values))
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))


def slope_per_min(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(t_s, value)`` points, per minute; None for < 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return sxy / sxx * 60.0


def judge_growth(
    samples: Sequence[GrowthSample],
    *,
    start_s: float,
    bounds: Mapping[str, float] = GROWTH_BOUNDS,
) -> dict[str, Any]:
    """Per series: first and last value, slope per minute from ``start_s`` on
    (the warm-up left out), its bound, and whether it held."""
    out: dict[str, Any] = {}
    for name, bound in bounds.items():
        points = [(s.t_s, s.values[name]) for s in samples if name in s.values]
        after = [(t, v) for t, v in points if t >= start_s]
        slope = slope_per_min(after)
        out[name] = {
            "unit": UNITS.get(name, ""),
            "first": points[0][1] if points else None,
            "last": points[-1][1] if points else None,
            "samples": len(after),
            "slope_per_min": None if slope is None else round(slope, 3),
            "bound_per_min": bound,
            "held": None if slope is None else slope <= bound,
        }
    return out
