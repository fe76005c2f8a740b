"""Running the pipeline: API (+ worker) under uvicorn, or a worker alone.

``run(config)`` is what ``alertbench serve`` and ``python -m reference_impl``
call. It checks Postgres and Redis first, so a wrong DSN or URL fails with a
message naming it instead of a stack trace from inside the server.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import signal
from typing import Any

import uvicorn
from redis.exceptions import RedisError

from reference_impl import db
from reference_impl import loop as event_loop
from reference_impl.app import create_asgi_app
from reference_impl.cache import connect_redis
from reference_impl.config import AppConfig
from reference_impl.runtime import Runtime
from reference_impl.websocket import CoalescingHttpToolsProtocol, CoalescingWebSocketProtocol

__all__ = [
    "ServeError",
    "preflight",
    "run",
    "run_worker",
    "serve",
    "serve_worker",
    "uvicorn_config",
]

logger = logging.getLogger(__name__)


class ServeError(RuntimeError):
    """The pipeline could not start; the message says why."""


async def preflight(config: AppConfig, *, timeout_s: float = 5.0) -> None:
    """Raise ServeError unless Postgres and Redis answer within ``timeout_s``."""
    try:
        conn = await db.connect(config.pg_dsn, timeout_s=timeout_s)
        await conn.close()
    except (OSError, TimeoutError, db.PostgresError, db.InterfaceError) as exc:
        raise ServeError(f"cannot connect to Postgres at {config.pg_dsn!r}: {exc}") from exc
    client = connect_redis(config.redis_url, timeout_s=timeout_s)
    try:
        pong = client.ping()
        if inspect.isawaitable(pong):
            await pong
    except (RedisError, OSError) as exc:
        raise ServeError(f"cannot connect to Redis at {config.redis_url!r}: {exc}") from exc
    finally:
        await client.aclose()


#: ``gc.set_threshold`` of a serving process (Python's default: 700, 10, 10).
GC_THRESHOLDS = (20_000, 10, 1000)


def tune_gc() -> None:
    """Make garbage collections rare: measured in this server with 1,000
    Socket.IO sessions, each full collection stalled every request for
    130-210 ms (every few seconds under load). What exists after start-up is
    frozen out of the collector, full collections wait for 1,000 middle ones,
    and a young collection for 20,000 new objects instead of 700. With 700,
    at 300 completions/s and 1,000 sessions, young and middle collections
    stopped the app 400 times for 0.94 s in all; with 20,000, 11 times for
    0.2 s, at the same CPU per completion. With 4,654 sessions (10,000
    projects), the middle collections of the 700 setting stopped it for up
    to 500 ms at a time: the tail of the generation latency."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(config: AppConfig) -> None:
    """Serve the API (and, if ``config.run_worker``, the queue worker) until stopped."""
    await preflight(config)
    if config.gc_tuning:
        tune_gc()
    server = uvicorn.Server(
        uvicorn_config(create_asgi_app(config), host=config.host, port=config.port)
    )
    await server.serve()
    if not server.started:
        raise ServeError("the API failed to start; see the log above")


def uvicorn_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """How the app is served (``serve``, and the tests' in-process servers)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        access_log=False,
        log_config=None,
        # Frames of one loop turn written at once, and an HTTP response's
        # head and body in one write (reference_impl.websocket).
        http=CoalescingHttpToolsProtocol,
        ws=CoalescingWebSocketProtocol,
        # Engine.IO pings every socket itself (and drops the silent ones);
        # uvicorn's own WebSocket pings on top were 1.5 % of the app's CPU
        # with 1,000 sockets.
        ws_ping_interval=None,
        # Clients connect directly (or through the harness's TCP proxy):
        # no X-Forwarded-* to read, so no middleware around every request.
        proxy_headers=False,
    )


async def serve_worker(config: AppConfig) -> None:
    """Run only the queue worker until SIGINT/SIGTERM."""
    await preflight(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runtime = await Runtime.start(config)
    runtime.start_worker()
    logger.info("worker running on queue %r", config.queue_name)
    try:
        await stop.wait()
    finally:
        await runtime.close()


def run(config: AppConfig) -> None:
    """Blocking entry point for the CLI: API + worker."""
    event_loop.run(serve(config), loop=config.loop)


def run_worker(config: AppConfig) -> None:
    """Blocking entry point for the CLI: worker only."""
    event_loop.run(serve_worker(config), loop=config.loop)
