"""The durable relay: Postgres notifications in, Socket.IO emits out.

Completion and generation call ``pg_notify('alert_created', ...)`` inside
their transactions, so a notification exists only for a committed alert. The
relay LISTENs on a dedicated connection and emits each alert's events.

Notifications are not durable: whatever is committed while the relay's
connection is down is never sent to it. So the relay keeps the database
clock time at which it last knew its connection was alive (a health query
every ``health_interval_s``), and after reconnecting it replays from the
table every alert created since then, less ``replay_margin_s`` (a
transaction's ``created_at`` is its start, which may precede its commit).
Ids it has already emitted are remembered (the last ``remember`` of them), so
replay and live notifications never emit one alert twice: each alert is
emitted once per relay.

A relay that starts afresh (its process crashed and was started again)
does not know what the one before it emitted, so its replays never reach
below the highest alert id committed when it first listened: those were
the previous relay's to emit, and the clients that were connected to the
crashed process catch up with ``sync`` when they reconnect. (Left open: an
alert whose id was taken before that first LISTEN and which commits only
while this relay is away again; with one process, the crash ended its
transaction.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reference_impl import db
from reference_impl.alerts import ALERT_COLUMNS, NOTIFY_CHANNEL, Alert
from reference_impl.fastjson import loads_own
from reference_impl.realtime import notification_from_alert

__all__ = ["APPLICATION_NAME", "Relay", "RelayStats"]

logger = logging.getLogger(__name__)

Emit = Callable[[Mapping[str, Any]], Awaitable[None]]

#: The relay's connection shows under this name in ``pg_stat_activity``.
APPLICATION_NAME = "alertbench-relay"

_REPLAY_SQL = f"""
SELECT {ALERT_COLUMNS} FROM workflow_alerts WHERE created_at >= $1 AND id > $2 ORDER BY id
"""
_HIGHEST_ID_SQL = "SELECT coalesce(max(id), 0) FROM workflow_alerts"


@dataclass
class RelayStats:
    """What the relay has done, for /metrics and tests."""

    #: Alerts emitted from live notifications.
    emitted_live: int = 0
    #: Alerts emitted by a replay after a reconnect.
    emitted_replay: int = 0
    #: Notifications or replayed rows skipped because already emitted.
    skipped_duplicates: int = 0
    #: Times the LISTEN connection was (re)established.
    connections: int = 0
    #: Set while the relay is listening (after a reconnect: once replayed).
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set while the relay has no working connection.
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    async def wait_for_connections(self, count: int, *, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until the LISTEN connection was established ``count`` times."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self.connections >= count)

    async def _connected(self) -> None:
        self.connections += 1
        self.lost.clear()
        self.listening.set()
        async with self._changed:
            self._changed.notify_all()


class Relay:
    """LISTEN, emit, and replay after a lost connection."""

    def __init__(
        self,
        dsn: str,
        emit: Emit,
        *,
        health_interval_s: float = 0.5,
        replay_margin_s: float = 30.0,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 2.0,
        remember: int = 200_000,
        connect_timeout_s: float = 5.0,
        rng: random.Random | None = None,
        on_emit: Callable[[str], None] | None = None,
        replay: bool = True,
    ) -> None:
        """``replay=False`` is the ``no_replay`` flaw: what was committed while
        the LISTEN connection was down is never emitted."""
        self._dsn = dsn
        self._replay_on_reconnect = replay
        self._emit = emit
        self._health_interval_s = health_interval_s
        self._replay_margin = dt.timedelta(seconds=replay_margin_s)
        self._reconnect_initial_s = reconnect_initial_s
        self._reconnect_max_s = reconnect_max_s
        self._connect_timeout_s = connect_timeout_s
        self._rng = rng or random.Random(0)
        self._emitted: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._remember = remember
        #: Database time when the connection was last known alive.
        self._alive_at: dt.datetime | None = None
        #: The highest alert id committed when this relay first listened.
        self._floor_id = 0
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._conn: db.Connection | None = None
        self._on_emit = on_emit or (lambda kind: None)
        self.stats = RelayStats()

    async def start(self, *, ready_timeout_s: float = 10.0) -> None:
        """Start relaying; return once the first LISTEN is in place."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-relay")
        async with asyncio.timeout(ready_timeout_s):
            await self.stats.listening.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_conn()

    async def _run(self) -> None:
        delay = self._reconnect_initial_s
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.listening.clear()
                self.stats.lost.set()
                logger.warning("relay lost its connection (%r); reconnecting in %.2fs", exc, delay)
            await self._close_conn()
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, self._reconnect_max_s)
            if self.stats.listening.is_set():
                delay = self._reconnect_initial_s

    async def _session(self) -> None:
        """One connection's life: listen, replay what was missed, relay."""
        conn = await db.connect(
            self._dsn, timeout_s=self._connect_timeout_s, application_name=APPLICATION_NAME
        )
        self._conn = conn
        await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        now: dt.datetime = await conn.fetchval("SELECT clock_timestamp()")
        if self._alive_at is None:  # the first LISTEN: older alerts are not ours
            self._floor_id = int(await conn.fetchval(_HIGHEST_ID_SQL))
        elif self._replay_on_reconnect:
            # Listening again: everything committed from here on arrives as a
            # notification; what was committed while we were away is replayed.
            await self._replay(conn, self._alive_at - self._replay_margin)
        self._alive_at = now
        await self.stats._connected()
        self._on_emit("connect")
        consumer = asyncio.create_task(self._consume(), name="alert-relay-consumer")
        try:
            while True:
                await asyncio.sleep(self._health_interval_s)
                if conn.is_closed():
                    raise ConnectionError("LISTEN connection closed")
                async with asyncio.timeout(max(self._health_interval_s * 4, 1.0)):
                    self._alive_at = await conn.fetchval("SELECT clock_timestamp()")
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._queue.put_nowait(payload)

    async def _consume(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                notification = loads_own(payload)
                alert_id = int(notification["alertId"])
            except (ValueError, KeyError, TypeError):
                logger.error("relay ignored a malformed notification: %.200s", payload)
                continue
            if await self._emit_once(alert_id, notification):
                self.stats.emitted_live += 1
                self._on_emit("live")

    async def _replay(self, conn: db.Connection, since: dt.datetime) -> None:
        started = time.perf_counter()
        rows = await conn.fetch(_REPLAY_SQL, since, self._floor_id)
        replayed = 0
        for row in rows:
            alert = Alert.from_row(row)
            if await self._emit_once(alert.id, notification_from_alert(alert)):
                replayed += 1
                self._on_emit("replay")
        self.stats.emitted_replay += replayed
        logger.info(
            "relay replayed %d of %d alerts since %s in %.1f ms",
            replayed,
            len(rows),
            since.isoformat(),
            (time.perf_counter() - started) * 1000,
        )

    async def _emit_once(self, alert_id: int, notification: Mapping[str, Any]) -> bool:
        if alert_id in self._emitted:
            self.stats.skipped_duplicates += 1
            return False
        self._emitted[alert_id] = None
        if len(self._emitted) > self._remember:
            self._emitted.popitem(last=False)
        try:
            await self._emit(notification)
        except Exception:
            logger.exception("relay could not emit alert %d", alert_id)
        return True

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2.0)
