"""Benchmark: every socket disconnecting at once (a network blip, the end of a
run), with python-socketio's manager and with the reference's room index.

Each socket is in its own room, its user's room and two project rooms, as in
a load run. python-socketio's manager walks every room of the namespace per
disconnect (O(sockets x rooms) in all); the index visits the leaving socket's
rooms only. Compare the two rows of a size: ``pytest
tests/benchmarks/pipeline/test_ri_rooms_bench.py --benchmark-only``.
"""

from __future__ import annotations

from typing import Any

import pytest
import socketio

from reference_impl.realtime import IndexedRoomsManager

NS = "/"


def _connected(cls: type[Any], sockets: int) -> tuple[Any, list[str]]:
    manager = cls()
    sids = [f"s{i}" for i in range(sockets)]
    for i, sid in enumerate(sids):
        # What a connect does to the rooms: the namespace's room of connected
        # sockets (None) and the socket's own room.
        for room in (None, sid):
            manager.basic_enter_room(sid, NS, room, eio_sid=f"eio-{sid}")
        for room in (f"user_{i}", f"project_{2 * i}", f"project_{2 * i + 1}"):
            manager.basic_enter_room(sid, NS, room)
    return manager, sids


@pytest.mark.parametrize("sockets", [500, 2000])
@pytest.mark.parametrize(
    "manager_class",
    [socketio.AsyncManager, IndexedRoomsManager],
    ids=["python-socketio", "indexed"],
)
def test_every_socket_disconnects(benchmark: Any, manager_class: type[Any], sockets: int) -> None:
    def setup() -> tuple[tuple[tuple[Any, list[str]]], dict[str, Any]]:
        return (_connected(manager_class, sockets),), {}

    def disconnect_all(connected: tuple[Any, list[str]]) -> Any:
        manager, sids = connected
        for sid in sids:
            manager.basic_disconnect(sid, NS)
        return manager

    manager = benchmark.pedantic(disconnect_all, setup=setup, rounds=3)
    assert manager.rooms == {}
    benchmark.extra_info["rooms_per_socket"] = 4
