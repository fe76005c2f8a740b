"""Lifecycle of the embedded Toxiproxy-compatible server.

Three ways to run it:

- ``EmbeddedToxiproxy`` in a running event loop (tests, async code);
- ``ToxiproxyThread`` on its own event loop in a daemon thread (the synchronous Stack);
- ``serve()`` until cancelled (``alertbench faults serve``).

``seed`` makes every toxicity roll and jitter/slicer draw reproducible: the
random source of a toxic on a connection is derived from (seed, proxy name,
connection number on that proxy, direction, toxic name, restart count), so it
does not depend on timing or on other proxies. Without a seed one is drawn at
start and logged, so a run can be replayed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from types import TracebackType

from aiohttp import web

from harness.faults.api import build_app
from harness.faults.collection import ProxyCollection

__all__ = ["EmbeddedToxiproxy", "ToxiproxyThread", "serve"]

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class EmbeddedToxiproxy:
    """The embedded server in the current event loop.

    ``port=0`` picks an ephemeral port; ``url`` and ``port`` are known after
    ``start()``. Only loopback hosts are accepted.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = None) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host must be a loopback address, got {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.host = host
        self.seed = secrets.randbits(32) if seed is None else seed
        self._requested_port = port
        self.port: int | None = None
        self.collection = ProxyCollection(seed=self.seed)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the API; raises if not started."""
        if self.port is None:
            raise RuntimeError("the embedded Toxiproxy is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> str:
        """Bind the API and return its URL."""
        if self._runner is not None:
            return self.url
        runner = web.AppRunner(
            build_app(self.collection), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        logger.info("embedded toxiproxy on %s (seed %d)", self.url, self.seed)
        return self.url

    async def stop(self) -> None:
        """Close every proxy and the API. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await self.collection.close()
        await runner.cleanup()
        logger.info("embedded toxiproxy stopped")

    async def __aenter__(self) -> EmbeddedToxiproxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(host: str, port: int, *, seed: int | None) -> None:
    """Run the embedded server until cancelled."""
    server = EmbeddedToxiproxy(host, port, seed=seed)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


class ToxiproxyThread:
    """The embedded server on its own event loop in a daemon thread (for sync callers)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = None) -> None:
        self.server = EmbeddedToxiproxy(host, port, seed=seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def seed(self) -> int:
        return self.server.seed

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start the thread and wait (at most ``timeout_s``) until the API listens."""
        if self._thread is not None:
            return self.url
        self._thread = threading.Thread(target=self._main, name="alertbench-toxiproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"embedded toxiproxy did not start within {timeout_s} s")
        if self._error is not None:
            self._thread.join(timeout_s)
            self._thread = None
            raise self._error
        return self.url

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
        finally:
            self._ready.set()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        await self.server.start()
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self.server.stop()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the server and join the thread (bounded by ``timeout_s``). Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._thread = None
        stopping = self._stopping
        if stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout_s)
        if thread.is_alive():
            raise TimeoutError(f"embedded toxiproxy thread did not stop within {timeout_s} s")

    def __enter__(self) -> ToxiproxyThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
