"""Types shared by the reference pipeline's integration tests and their fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx
import uvicorn

from harness.clients.subscriber import AlertClient, ClientEvent, ReconnectPolicy
from harness.contract.seed import SeedResult
from reference_impl import AppConfig, issue_token
from reference_impl.app import Api as App
from reference_impl.serve import uvicorn_config


@dataclasses.dataclass
class Api:
    """An in-process client of a running app (lifespan started)."""

    app: App
    http: httpx.AsyncClient
    config: AppConfig

    def auth(self, user_id: int) -> dict[str, str]:
        token = issue_token(user_id, secret=self.config.token_secret)
        return {"Authorization": f"Bearer {token}"}

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


StartApi = Callable[..., Awaitable[Api]]
"""``await start_api(flaws=..., hooks=..., **config_changes)`` -> a started Api."""


class InProcessServer(uvicorn.Server):
    """uvicorn in the test's event loop, without touching signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_in_process(app: Any, *, timeout_s: float = 20.0) -> AsyncIterator[int]:
    """Serve an ASGI app on 127.0.0.1 (ephemeral port) for the block; yield the port."""
    server = InProcessServer(uvicorn_config(app, host="127.0.0.1", port=0))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(timeout_s):
            while not server.started:
                if task.done():
                    raise RuntimeError(f"server failed to start: {task.exception()!r}")
                await asyncio.sleep(0.01)
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        async with asyncio.timeout(timeout_s):
            await task


@dataclasses.dataclass
class EventLog:
    """Events one AlertClient received, with a bounded wait for a condition."""

    events: list[ClientEvent] = dataclasses.field(default_factory=list)
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def __call__(self, event: ClientEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.name == name]

    def alert_ids(self) -> list[int]:
        return [int(d["id"]) for d in self.named("new_alert")]

    async def wait_for(
        self, predicate: Callable[[EventLog], bool], *, timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


FAST = ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2, attempt_timeout_s=5.0)


@dataclasses.dataclass
class Live:
    """A running app (HTTP + Socket.IO) and helpers to drive it."""

    url: str
    app: Any
    config: AppConfig
    http: httpx.AsyncClient
    _exit: contextlib.AsyncExitStack

    def auth(self, user_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(user_id, secret=self.config.token_secret)}"}

    async def complete(self, project_id: int, line_item_id: int, user_id: int) -> httpx.Response:
        return await self.http.post(
            f"/api/projects/{project_id}/line-items/{line_item_id}/complete",
            headers=self.auth(user_id),
        )

    async def client(
        self,
        user_id: int,
        projects: Sequence[int] = (),
        *,
        url: str | None = None,
        rejoin: bool = True,
    ) -> tuple[AlertClient, EventLog]:
        log = EventLog()
        client = AlertClient(
            url or self.url,
            issue_token(user_id, secret=self.config.token_secret),
            projects=projects,
            policy=FAST,
            rejoin=rejoin,
            on_event=log,
        )
        await client.start()
        self._exit.push_async_callback(client.stop)
        return client, log


StartLive = Callable[..., Awaitable[Live]]


def first_step(seeded: SeedResult, project_id: int) -> tuple[int, int, int]:
    """(line item to complete, a member who may complete it, assignee of the next alert)."""
    first, nxt = seeded.active_line_items[:2]
    members = seeded.members[project_id]
    return first.id, members["project_manager"], members[nxt.responsible_role]


async def wait_for_lock_wait(
    conn: Any, backend: int, task: asyncio.Task[Any], *, timeout_s: float = 10.0
) -> None:
    """Wait (bounded) until ``backend`` waits for a lock, or ``task`` is done."""
    async with asyncio.timeout(timeout_s):
        while not task.done():
            waiting = await conn.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", backend
            )
            if waiting:
                return
            await asyncio.sleep(0.01)  # a poll of pg_stat_activity, bounded by timeout_s
