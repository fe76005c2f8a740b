"""The harness's contract client: reconnect with backoff, rejoin, catch up, dedupe.

It speaks only the contract's Socket.IO side (``docs/contract.md``), so it
subscribes to any target. It is what the seed's browser client (socket.js)
should have been, on python-socketio's ``AsyncClient``:

- reconnects after any drop with exponential backoff and jitter (1 s
  initial, 30 s cap by default; a server-initiated disconnect retries at
  once), seeded so a run is reproducible;
- on every (re)connect re-subscribes its project rooms and calls ``sync``
  with the last alert id it saw, so it receives what it missed;
- surfaces each ``new_alert`` once to its application, dropping repeats by
  alert id (every receipt, repeats too, still reaches ``on_event``, marked
  ``repeat`` / ``surfaced``, so the history shows what the server sent);
- records, per reconnect, when it was disconnected, connected and
  subscribed again, so the harness can measure reconnection time from the
  moment the network healed.

``rejoin=False`` reproduces the seed's client flaw ``no_rejoin``: after a
reconnect it neither re-subscribes nor catches up; ``sync=False`` the flaw
``no_sync``: it re-joins its rooms but never asks for what it missed;
``dedupe=False`` the flaw ``no_client_dedupe``: it surfaces repeats (a ``sync`` overlapping what
came live) to the application. (They are flaws of the client, so the
harness applies them, whatever the target.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import engineio
import engineio.packet
import socketio
import socketio.packet

from harness.clients.fastjson import SocketIOJson

__all__ = ["AlertClient", "ClientEvent", "ReconnectPolicy", "ReconnectRecord"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ReconnectPolicy:
    """Exponential backoff with jitter between reconnection attempts."""

    #: Delay before the first attempt after a drop, in seconds.
    initial_delay_s: float = 1.0
    #: Largest delay between attempts, in seconds.
    max_delay_s: float = 30.0
    #: Each failed attempt multiplies the delay by this.
    multiplier: float = 2.0
    #: The delay is scaled by a random factor in ``[1 - jitter, 1 + jitter]``.
    jitter: float = 0.5
    #: Give up after this many attempts (``None``: keep trying until stopped).
    max_attempts: int | None = None
    #: How long one connection attempt may take, in seconds.
    attempt_timeout_s: float = 5.0
    #: Catch-up asks for alerts after ``last id seen - overlap``: ids are
    #: assigned at insert but become visible at commit, so an alert with a
    #: lower id than one already received can still commit during an outage.
    #: The overlap covers every transaction in flight; repeats are dropped.
    catchup_overlap_ids: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay_s <= self.max_delay_s:
            raise ValueError("initial_delay_s must be > 0 and <= max_delay_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")
        if self.attempt_timeout_s <= 0:
            raise ValueError("attempt_timeout_s must be > 0")
        if self.catchup_overlap_ids < 0:
            raise ValueError("catchup_overlap_ids must be >= 0")

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt number ``attempt`` (1-based)."""
        base = min(self.initial_delay_s * self.multiplier ** (attempt - 1), self.max_delay_s)
        return base * (1 - self.jitter + 2 * self.jitter * rng.random())


@dataclass
class ReconnectRecord:
    """One outage as the client saw it (``time.monotonic()`` seconds)."""

    disconnected_at: float
    reason: str
    attempts: int = 0
    connected_at: float | None = None
    #: Rooms re-joined and catch-up done; ``None`` without rejoin.
    subscribed_at: float | None = None
    #: Alerts received through ``sync`` after this reconnect.
    caught_up: int = 0


@dataclass(frozen=True)
class ClientEvent:
    """A server event as received: name, payload, receive time."""

    name: str
    data: dict[str, Any]
    #: The client's clock (``time.monotonic()`` unless another was given).
    received_at: float
    #: ``live`` for a pushed event, ``sync`` for catch-up.
    via: str = "live"
    #: Wall clock (``time.time()``) at receipt, comparable with the server's
    #: ``committedAtMs`` on the same machine.
    received_wall: float = field(default_factory=time.time)
    #: ``new_alert`` only: this client had received the alert before (a
    #: server duplicate, or a ``sync`` overlapping what came live).
    repeat: bool = False
    #: Handed to the application: the first receipt of an alert, or every
    #: receipt when the client does not drop repeats (``dedupe=False``).
    surfaced: bool = True


class Refused(socketio.exceptions.SocketIOError):  # type: ignore[misc]  # socketio is untyped
    """After a reconnect, the server refused a catch-up page or a room re-join
    for a reason other than "forbidden" (e.g. its database failed): the
    connection is fine, the step is tried again on it."""


class _Packet(socketio.packet.Packet):  # type: ignore[misc]  # socketio is untyped
    """python-socketio's packet, parsed with orjson where that reads the same
    (``harness.clients.fastjson``): passed as ``serializer``, so only these
    clients use it, not every python-socketio user in the process."""

    json = SocketIOJson


#: Socket.IO packet types (the first character of an Engine.IO message) that
#: python-socketio dispatches without waiting on the network: EVENT (our
#: handlers for events are plain functions; an ack the server asks for is only
#: queued) and ACK (it resolves a ``call``'s future).
_INLINE_TYPES = frozenset("23")


class _EngineIOClient(engineio.AsyncClient):  # type: ignore[misc]  # engineio is untyped
    """engine.io's client, dispatching event and ack messages in its read loop.

    engine.io runs the message handler of every received packet in a task of
    its own, so a handler may wait on the network without stopping the reads.
    Ours never does for an event or an ack (see ``_INLINE_TYPES``), so those
    two types are dispatched in the read loop, in the order received (as
    the tasks ran them); every other packet (connect, disconnect, binary
    parts) keeps engine.io's task, since its handler may wait on this loop.
    The in-process receive path fell from 58.8 to 36.6 us per event
    (``test_harness_cost_bench.py --only paths``, Python 3.11); a subscriber's
    full cost is mostly its wake-ups (docs/performance.md).
    """

    async def _receive_packet(self, pkt: engineio.packet.Packet) -> None:
        data = pkt.data
        if (
            pkt.packet_type == engineio.packet.MESSAGE
            and isinstance(data, str)
            and data[:1] in _INLINE_TYPES
        ):
            handler = self.handlers.get("message")
            if handler is not None:
                try:
                    await handler(data)
                except Exception:
                    # What the task would have done with it: log, keep reading.
                    logger.exception("Socket.IO message handler failed")
            return
        await super()._receive_packet(pkt)


class _SocketIOClient(socketio.AsyncClient):  # type: ignore[misc]  # socketio is untyped
    def _engineio_client_class(self) -> type[engineio.AsyncClient]:
        return _EngineIOClient


@dataclass
class _State:
    last_alert_id: int = 0
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0


class AlertClient:
    """One user's connection: ``await start()``, then events flow to ``on_event``."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        projects: Sequence[int] = (),
        policy: ReconnectPolicy | None = None,
        rng: random.Random | None = None,
        rejoin: bool = True,
        dedupe: bool = True,
        sync: bool = True,
        on_event: Callable[[ClientEvent], None] | None = None,
        on_session: Callable[[str, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.projects = tuple(projects)
        self.policy = policy or ReconnectPolicy()
        self.rejoin = rejoin
        self.dedupe = dedupe
        self.sync = sync
        self.reconnects: list[ReconnectRecord] = []
        self.forbidden: list[int] = []
        #: Acks refused for another reason than "forbidden" (re-joins, sync
        #: pages), and an event set at each.
        self.refusals = 0
        self.refused = asyncio.Event()
        self._token = token
        self._rng = rng or random.Random(0)
        self._on_event = on_event
        self._on_session = on_session or (lambda kind, details: None)
        self._clock = clock
        self._state = _State()
        self._stopping = False
        self._reconnect_task: asyncio.Task[None] | None = None
        # handle_sigint=False: engine.io's own Ctrl-C handler would cancel every
        # task and stop the loop under the harness, losing the partial report
        # and the orderly teardown (harness.loop cancels the run instead).
        self._sio = _SocketIOClient(
            reconnection=False,
            logger=False,
            engineio_logger=False,
            handle_sigint=False,
            serializer=_Packet,
        )
        self._sio.on("disconnect", self._on_disconnect)
        self._sio.on("new_alert", self._on_new_alert)
        self._sio.on("alerts_refresh", self._make_forwarder("alerts_refresh"))
        self._sio.on("workflow_updated", self._make_forwarder("workflow_updated"))
        #: Set once rooms are joined and catch-up is done (again after each reconnect).
        self.subscribed = asyncio.Event()
        #: Set while the connection is down.
        self.disconnected = asyncio.Event()
        #: Set when a reconnection succeeded (cleared by the next drop).
        self.reconnected = asyncio.Event()

    # -- public -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._sio.connected)

    @property
    def last_alert_id(self) -> int:
        return self._state.last_alert_id

    @property
    def duplicates_dropped(self) -> int:
        return self._state.duplicates

    @property
    def alert_ids(self) -> frozenset[int]:
        return frozenset(self._state.seen)

    async def start(self) -> None:
        """Connect, subscribe and sync once; raise if the first connect fails."""
        await self._connect()
        self._on_session("connect", {"at": self._clock()})
        await self._after_connect(first=True)

    async def stop(self) -> None:
        """Disconnect and stop reconnecting."""
        self._stopping = True
        self._on_session("close", {"at": self._clock()})
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        with contextlib.suppress(Exception):
            # Bounded: a half-dead connection can hold engine.io's read loop.
            async with asyncio.timeout(self.policy.attempt_timeout_s):
                await self._sio.disconnect()
        # python-socketio may leave its read loops winding down; give them a
        # bounded moment so no task outlives the client.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._sio.wait(), timeout=2.0)

    async def call(self, event: str, data: object, *, timeout_s: float = 5.0) -> Any:
        """Send an event and wait (bounded) for its ack."""
        return await self._sio.call(event, data, timeout=timeout_s)

    # -- connection ---------------------------------------------------------

    async def _connect(self) -> None:
        await self._sio.connect(
            self.url,
            auth={"token": self._token},
            transports=["websocket"],
            wait_timeout=self.policy.attempt_timeout_s,
        )

    async def _after_connect(self, *, first: bool) -> None:
        if not (first or self.rejoin):
            return
        for project_id in self.projects:
            ack = await self.call("subscribe_project", {"projectId": project_id})
            if isinstance(ack, dict) and ack.get("ok"):
                self._on_session("subscribe", {"at": self._clock(), "project_id": project_id})
                continue
            forbidden = isinstance(ack, dict) and ack.get("error") == "forbidden"
            if not (first or forbidden):
                self.refusals += 1
                self.refused.set()
                raise Refused(f"subscribe_project {project_id} refused: {ack!r}")
            if project_id not in self.forbidden:
                self.forbidden.append(project_id)
        caught_up = await self._sync(strict=not first) if self.sync else 0
        if self.reconnects and not first:
            self.reconnects[-1].caught_up = caught_up
            self._on_session("caught_up", {"at": self._clock()})
        self.subscribed.set()

    async def _sync(self, *, strict: bool) -> int:
        """Fetch alerts after the last id seen, page by page (bounded).

        ``strict`` (after a reconnect): a refused page raises
        :class:`Refused`, so the client retries rather than call itself
        caught up with a gap. On the first connect nothing was missed yet.
        Refusals are counted (``refusals``), not logged one by one: under a
        database fault every client meets them, and retries as it should.
        """
        received = 0
        since = max(0, self._state.last_alert_id - self.policy.catchup_overlap_ids)
        for _page in range(100):
            ack = await self.call("sync", {"sinceAlertId": since})
            if not (isinstance(ack, dict) and ack.get("ok")):
                self.refusals += 1
                self.refused.set()
                logger.debug("sync refused: %r", ack)
                if strict:
                    raise Refused(f"sync refused: {ack!r}")
                break
            alerts = ack.get("alerts", [])
            for alert in alerts:
                since = max(since, int(alert["id"]))
                payload = {
                    "id": alert["id"],
                    "title": alert["title"],
                    "message": alert["message"],
                    "priority": alert["priority"],
                    "projectId": alert["projectId"],
                    "stepId": alert["stepId"],
                    "assignedToId": alert.get("assignedToId"),
                    "createdAt": alert["createdAt"],
                }
                if self._accept(payload, via="sync"):
                    received += 1
            if not ack.get("more") or not alerts:
                break
        return received

    async def _on_disconnect(self, reason: object = None) -> None:
        self.subscribed.clear()
        self.reconnected.clear()
        self.disconnected.set()
        if self._stopping:
            return
        text = str(reason) if reason is not None else "unknown"
        self.reconnects.append(ReconnectRecord(disconnected_at=self._clock(), reason=text))
        self._on_session("disconnect", {"at": self._clock(), "reason": text})
        if self._reconnect_task is None or self._reconnect_task.done():
            immediate = "server" in text.lower()
            self._reconnect_task = asyncio.create_task(self._reconnect(immediate=immediate))

    async def _reconnect(self, *, immediate: bool) -> None:
        attempt = 0
        while not self._stopping:
            # The newest outage: a drop while re-subscribing starts another.
            record = self.reconnects[-1]
            attempt += 1
            if self.policy.max_attempts is not None and attempt > self.policy.max_attempts:
                logger.warning("giving up after %d reconnection attempts", attempt - 1)
                return
            if not (immediate and attempt == 1):
                await asyncio.sleep(self.policy.delay_s(attempt, self._rng))
            record.attempts = attempt
            if not self._sio.connected:
                try:
                    await self._connect()
                except (
                    socketio.exceptions.ConnectionError,
                    OSError,
                    TimeoutError,
                    ValueError,  # engine.io "not in a disconnected state": reset, try again
                ) as exc:
                    logger.debug("reconnection attempt %d failed: %r", attempt, exc)
                    with contextlib.suppress(Exception):
                        await self._sio.eio.disconnect(abort=True)
                    continue
                record.connected_at = self._clock()
                self._on_session("reconnect", {"at": record.connected_at})
                self.disconnected.clear()
                self.reconnected.set()
            try:
                await self._after_connect(first=False)
            except Refused as exc:
                # The server answered, so the connection is fine: re-join and
                # sync again on it after the next delay.
                logger.debug("re-subscribing refused: %r", exc)
                continue
            except (socketio.exceptions.SocketIOError, OSError, TimeoutError) as exc:
                # Dropped again while re-subscribing, or an ack that never
                # came: the disconnect handler saw this task still running and
                # left the retry to it, so go on here, on a fresh connection.
                # The disconnect is bounded: it waits for engine.io's read
                # loop, which a half-dead connection can hold for its ping
                # timeout.
                logger.debug("re-subscribing failed: %r", exc)
                if self._sio.connected:
                    try:
                        async with asyncio.timeout(self.policy.attempt_timeout_s):
                            await self._sio.disconnect()
                    except TimeoutError:
                        # Left half-closed: engine.io's reset makes it
                        # connectable again (it refuses to connect otherwise).
                        with contextlib.suppress(Exception):
                            await self._sio.eio.disconnect(abort=True)
                continue
            if self.rejoin:
                record.subscribed_at = self._clock()
            return

    # -- events -------------------------------------------------------------

    def _accept(self, data: dict[str, Any], *, via: str) -> bool:
        """Record a ``new_alert`` (every receipt, repeats too, so the history
        shows what the server sent); True if it was surfaced to the application."""
        alert_id = data.get("id")
        if not isinstance(alert_id, int):
            return False
        repeat = alert_id in self._state.seen
        if repeat:
            self._state.duplicates += 1
        else:
            self._state.seen.add(alert_id)
            self._state.last_alert_id = max(self._state.last_alert_id, alert_id)
        surfaced = not (repeat and self.dedupe)
        if self._on_event is not None:
            self._on_event(
                ClientEvent("new_alert", data, self._clock(), via, repeat=repeat, surfaced=surfaced)
            )
        return surfaced

    # The event handlers are plain functions: python-socketio calls them
    # directly, where a coroutine handler costs a coroutine per event.

    def _on_new_alert(self, data: object) -> None:
        if isinstance(data, dict):
            self._accept(data, via="live")

    def _make_forwarder(self, name: str) -> Callable[[object], None]:
        def forward(data: object) -> None:
            if self._on_event is not None and isinstance(data, dict):
                self._on_event(ClientEvent(name, data, self._clock()))

        return forward
