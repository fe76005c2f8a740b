"""Socket.IO delivery: rooms, authorization, catch-up and the emits.

The server side of the contract's Socket.IO part (docs/contract.md), on python-socketio's
``AsyncServer`` (ASGI), mounted next to the HTTP API:

- connect with ``auth={"token": ...}``; a missing, forged or expired token is
  refused; the socket joins ``user_<id>``;
- ``subscribe_project {projectId}`` joins ``project_<id>`` for members only
  (ack ``{"ok": true}`` or ``{"ok": false, "error": "forbidden"}``);
- ``sync {sinceAlertId}`` acks with the user's alerts created after that id;
- every other event, and every malformed payload, gets an error ack; a
  handler failure is logged and answered, never a dropped connection.

With several server processes, emits go through python-socketio's Redis
manager, so a client connected to any process gets every event meant for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from reference_impl import db
from reference_impl.alerts import ALERT_COLUMNS, Alert
from reference_impl.auth import AuthError, TokenVerifier
from reference_impl.fastjson import SocketIOJson
from reference_impl.flaws import Flaw

__all__ = [
    "SYNC_LIMIT",
    "RealtimeEmitter",
    "RealtimeServer",
    "alert_events",
    "notification_from_alert",
]

logger = logging.getLogger(__name__)

#: At most this many alerts in one ``sync`` ack; the client asks again from
#: the last id it got when the ack is full.
SYNC_LIMIT = 1000
_MAX_ID = 2**63 - 1

_MEMBER_SQL = "SELECT EXISTS (SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2)"
_SYNC_SQL = f"""
SELECT {ALERT_COLUMNS} FROM workflow_alerts
WHERE assigned_to_id = $1 AND id > $2
ORDER BY id LIMIT {SYNC_LIMIT}
"""

Ack = dict[str, Any]


def alert_events(alert: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The (event, room, payload) triples one committed alert produces.

    ``alert`` is the ``alert_created`` notification payload (or the same
    fields read back from the table): alertId, projectId, assignedToId,
    stepId, title, message, priority, createdAt.
    """
    project_id = alert["projectId"]
    events: list[tuple[str, str, dict[str, Any]]] = []
    if alert.get("assignedToId") is not None:
        events.append(
            (
                "new_alert",
                f"user_{alert['assignedToId']}",
                {
                    "id": alert["alertId"],
                    "title": alert["title"],
                    "message": alert["message"],
                    "priority": alert["priority"],
                    "projectId": project_id,
                    "stepId": alert["stepId"],
                    "assignedToId": alert["assignedToId"],
                    "createdAt": alert["createdAt"],
                },
            )
        )
    events.append(
        (
            "alerts_refresh",
            f"project_{project_id}",
            {"projectId": project_id, "type": "workflow_progression", "alertId": alert["alertId"]},
        )
    )
    events.append(
        (
            "workflow_updated",
            f"project_{project_id}",
            {"projectId": project_id, "lineItemId": alert["stepId"], "alertId": alert["alertId"]},
        )
    )
    return events


def notification_from_alert(alert: Alert) -> dict[str, Any]:
    """The notification payload for an alert row (replay and direct emits)."""
    return {
        "alertId": alert.id,
        "projectId": alert.project_id,
        "assignedToId": alert.assigned_to_id,
        "stepId": alert.step_id,
        "lineItemId": alert.step_id,
        "workflowId": alert.workflow_id,
        "title": alert.title,
        "message": alert.message,
        "priority": alert.priority,
        "createdAt": alert.created_at.isoformat(),
    }


def _positive_id(data: object, key: str, *, allow_zero: bool = False) -> int | str:
    """The id under ``key`` in an event payload, or an error message."""
    if not isinstance(data, dict):
        return f"payload must be an object with {key!r}"
    value = data.get(key)
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= _MAX_ID:
        kind = "a non-negative" if allow_zero else "a positive"
        return f"{key} must be {kind} integer, got {value!r}"
    return value


class IndexedRoomsManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's manager, with an index of the rooms each socket is in.

    The stock manager finds a disconnecting socket's rooms by copying and
    scanning every room of the namespace (``BaseManager.basic_disconnect``;
    ``get_rooms`` scans too): each socket has a room of its own, and every
    user and project a room, so N sockets leaving cost O(N x rooms). With
    4,654 clients on 10,000 projects (about 19,000 rooms) the disconnects at
    the end of a load run kept the app busy for many seconds (its
    ``/metrics`` timed out, it ignored its stop signal), and a network blip
    that drops every client would stall the delivery of every alert the
    same way. Here a socket's rooms are kept per (namespace, sid) as it
    enters and leaves them, so a disconnect leaves exactly those: O(its rooms).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        # The rest as in BaseManager.basic_disconnect (python-socketio 5.x).
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]


class DirectEmitManager(IndexedRoomsManager):
    """python-socketio's manager, with an emit that starts no task per recipient.

    ``AsyncManager.emit`` encodes the packet once, then creates one task per
    recipient socket and waits for them all; each of those tasks only puts the
    packet on the socket's (unbounded) send queue. This emit puts it there
    directly, in order: the same packets to the same sockets, without a task,
    a wait and their callbacks for each of the ~6 sockets an alert reaches
    (asyncio's task machinery was 6 % of the app's CPU at 300 completions/s).
    Emits with an ack callback keep the library's path.
    """

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        packets = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid not in skip:
                for pkt in packets:
                    await self.server._send_eio_packet(eio_sid, pkt)


class DirectEmitRedisManager(socketio.AsyncRedisManager, DirectEmitManager):  # type: ignore[misc]
    """The Redis manager (several processes) whose local delivery is DirectEmitManager's."""


class RealtimeServer:
    """The Socket.IO server of one pipeline process."""

    def __init__(
        self,
        *,
        token_secret: str,
        pool_getter: Callable[[], db.Pool],
        flaws: frozenset[Flaw] = frozenset(),
        redis_url: str | None = None,
        redis_channel: str = "alertbench-socketio",
    ) -> None:
        manager = (
            DirectEmitRedisManager(redis_url, channel=redis_channel)
            if redis_url is not None
            else DirectEmitManager()
        )
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            cors_allowed_origins="*",
            json=SocketIOJson,
            logger=False,
            engineio_logger=False,
        )
        self._verify = TokenVerifier(token_secret)
        self._pool = pool_getter
        self._flaws = flaws
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("subscribe_project", self._guard(self._on_subscribe_project))
        self.sio.on("sync", self._guard(self._on_sync))
        self.sio.on("*", self._on_unknown)

    def asgi(self, other: Any) -> socketio.ASGIApp:
        """The ASGI app serving Socket.IO at ``/socket.io`` and ``other`` elsewhere."""
        return socketio.ASGIApp(self.sio, other_asgi_app=other)

    async def emit_alert(self, notification: Mapping[str, Any]) -> None:
        """Send the events of one committed alert to their rooms."""
        for event, room, payload in alert_events(notification):
            await self.sio.emit(event, payload, to=room)

    # -- handlers -----------------------------------------------------------

    async def _on_connect(
        self, sid: str, environ: object = None, auth: object = None
    ) -> Ack | None:
        if "user_id" in await self.sio.get_session(sid):
            # A client's own event named "connect": python-socketio hands it to
            # this handler. It is no connection, and switches no identity.
            return {"ok": False, "error": "reserved event 'connect'"}
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError("missing token")
        try:
            user_id = self._verify(token)
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        await self.sio.save_session(sid, {"user_id": user_id})
        await self.sio.enter_room(sid, f"user_{user_id}")
        return None

    async def _on_disconnect(self, sid: str, reason: object = None) -> None:
        logger.debug("socket %s disconnected (%s)", sid, reason)

    def _guard(
        self, handler: Callable[[str, object], Awaitable[Ack]]
    ) -> Callable[[str, object], Awaitable[Ack]]:
        async def guarded(sid: str, data: object = None) -> Ack:
            try:
                return await handler(sid, data)
            except db.UNAVAILABLE as exc:
                logger.warning("socket event: database unavailable (sid %s): %r", sid, exc)
                return {"ok": False, "error": "database unavailable"}
            except Exception:
                logger.exception("socket event handler failed (sid %s)", sid)
                return {"ok": False, "error": "internal error"}

        return guarded

    async def _user(self, sid: str) -> int:
        session = await self.sio.get_session(sid)
        user_id: int = session["user_id"]
        return user_id

    async def _on_subscribe_project(self, sid: str, data: object) -> Ack:
        project_id = _positive_id(data, "projectId")
        if isinstance(project_id, str):
            return {"ok": False, "error": project_id}
        user_id = await self._user(sid)
        if Flaw.NO_ROOM_AUTH not in self._flaws:
            async with self._pool().acquire() as conn:
                member = await conn.fetchval(_MEMBER_SQL, project_id, user_id)
            if not member:
                return {"ok": False, "error": "forbidden", "projectId": project_id}
        await self.sio.enter_room(sid, f"project_{project_id}")
        return {"ok": True, "projectId": project_id}

    async def _on_sync(self, sid: str, data: object) -> Ack:
        since = _positive_id(data, "sinceAlertId", allow_zero=True)
        if isinstance(since, str):
            return {"ok": False, "error": since}
        user_id = await self._user(sid)
        async with self._pool().acquire() as conn:
            rows = await conn.fetch(_SYNC_SQL, user_id, since)
        alerts = [Alert.from_row(r).to_json() for r in rows]
        return {"ok": True, "alerts": alerts, "more": len(alerts) == SYNC_LIMIT}

    async def _on_unknown(self, event: str, sid: str, data: object = None) -> Ack:
        return {"ok": False, "error": f"unknown event {event!r}"}


class RealtimeEmitter:
    """Direct emit of an alert: the seed's emit-inside-the-transaction.

    Only the ``emit_before_commit`` flaw calls it (from inside the
    completion transaction); the correct path is the relay.
    """

    def __init__(self, server: RealtimeServer) -> None:
        self._server = server

    async def emit(self, alert: Alert) -> None:
        await self._server.emit_alert(notification_from_alert(alert))
