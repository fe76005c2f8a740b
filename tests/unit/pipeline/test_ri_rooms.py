"""The reference's room index: the same rooms as python-socketio's manager
after any sequence of connects, joins, leaves, room closes and disconnects,
and a disconnect that visits only the leaving socket's rooms."""

from __future__ import annotations

from typing import Any

import socketio
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio.base_manager import BaseManager

from reference_impl.realtime import IndexedRoomsManager

NS = "/"
SIDS = [f"s{i}" for i in range(6)]
ROOMS = ["user_1", "user_2", "project_1", "project_2", "project_3"]


class _Eio:
    next_id = ""

    def generate_id(self) -> str:
        return self.next_id


class _Server:
    def __init__(self) -> None:
        self.eio = _Eio()


def _manager(cls: type[Any]) -> Any:
    manager = cls()
    manager.server = _Server()  # only pre_connect asks it for an id
    return manager


def _apply(manager: Any, op: tuple[str, int, int]) -> None:
    kind, s, r = op
    sid, room = SIDS[s], ROOMS[r]
    connected = NS in manager.rooms and sid in manager.rooms[NS].get(None, {})
    if kind == "connect" and not connected:
        manager.server.eio.next_id = sid
        # AsyncManager's pre_connect and connect are coroutines around these.
        BaseManager.pre_connect(manager, f"eio-{sid}", NS)
        BaseManager.connect(manager, sid, NS)
    elif kind == "enter" and connected:
        manager.basic_enter_room(sid, NS, room)
    elif kind == "leave":
        manager.basic_leave_room(sid, NS, room)
    elif kind == "close":
        manager.basic_close_room(room, NS)
    elif kind == "ack" and connected:
        manager._generate_ack_id(sid, lambda *a: None)
    elif kind == "pre_disconnect" and connected:
        manager.pre_disconnect(sid, NS)
    elif kind == "disconnect":
        manager.basic_disconnect(sid, NS)


def _state(manager: Any) -> dict[str, Any]:
    return {
        "rooms": {
            ns: {room: dict(m) for room, m in rooms.items()} for ns, rooms in manager.rooms.items()
        },
        "callbacks": sorted(manager.callbacks),
        "pending_connect": manager.pending_connect,
        "pending_disconnect": manager.pending_disconnect,
        "rooms_of": {sid: sorted(manager.get_rooms(sid, NS)) for sid in SIDS},
    }


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["connect", "enter", "leave", "close", "ack", "pre_disconnect", "disconnect"]
        ),
        st.integers(0, len(SIDS) - 1),
        st.integers(0, len(ROOMS) - 1),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(OPS)
def test_the_index_keeps_the_same_rooms_as_python_socketio(ops: list[tuple[str, int, int]]) -> None:
    stock, indexed = _manager(socketio.AsyncManager), _manager(IndexedRoomsManager)
    for op in ops:
        _apply(stock, op)
        _apply(indexed, op)
        assert _state(indexed) == _state(stock)


class _CountingRooms(dict[Any, Any]):
    """A namespace's rooms that count how often the whole mapping is walked."""

    walks = 0

    def copy(self) -> Any:
        type(self).walks += 1
        return _CountingRooms(self)

    def items(self) -> Any:
        type(self).walks += 1
        return super().items()


def test_a_disconnect_walks_no_other_sockets_rooms() -> None:
    manager = _manager(IndexedRoomsManager)
    for sid in SIDS:
        _apply(manager, ("connect", SIDS.index(sid), 0))
    for room in range(len(ROOMS)):
        _apply(manager, ("enter", 0, room))
    manager.rooms[NS] = _CountingRooms(manager.rooms[NS])
    _CountingRooms.walks = 0
    for sid in SIDS:
        manager.basic_disconnect(sid, NS)
        assert manager.get_rooms(sid, NS) == []
    assert _CountingRooms.walks == 0
    assert NS not in manager.rooms
