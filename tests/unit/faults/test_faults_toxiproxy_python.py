"""The toxiproxy-python client library drives the embedded server (a third-party client).

toxiproxy-python is synchronous (requests), so the server runs in ToxiproxyThread.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.faults import ToxiproxyThread

IO_TIMEOUT_S = 5.0


class _Echo:
    """A blocking echo server on a thread (the test itself is synchronous)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(IO_TIMEOUT_S)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(IO_TIMEOUT_S)
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        # shutdown() wakes the blocked accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(IO_TIMEOUT_S)


@pytest.fixture
def server() -> Iterator[toxiproxy.Toxiproxy]:
    thread = ToxiproxyThread(seed=11)
    thread.start()
    host, port = thread.url.removeprefix("http://").rsplit(":", 1)
    client = toxiproxy.Toxiproxy()
    saved = (APIConsumer.host, APIConsumer.port)
    client.update_api_consumer(host, int(port))
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved
        thread.stop()


@pytest.fixture
def echo() -> Iterator[_Echo]:
    server = _Echo()
    yield server
    server.close()


def _round_trip(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as sock:
        sock.sendall(b"hello")
        return sock.recv(5)


def test_create_list_and_destroy(server: toxiproxy.Toxiproxy, echo: _Echo) -> None:
    assert server.running()
    assert b"alertbench" in server.version()
    proxy = server.create(upstream=echo.address, name="app")
    assert proxy.enabled is True
    assert set(server.proxies()) == {"app"}
    port = int(proxy.listen.rsplit(":", 1)[1])
    assert _round_trip(port) == b"hello"
    with pytest.raises(ProxyExists):
        server.create(upstream=echo.address, name="app")
    assert server.destroy(proxy) is True
    assert server.proxies() == {}


def test_toxics_round_trip(server: toxiproxy.Toxiproxy, echo: _Echo) -> None:
    proxy = server.create(upstream=echo.address, name="app")
    proxy.add_toxic(type="latency", attributes={"latency": 20, "jitter": 5})
    proxy.add_toxic(type="bandwidth", stream="upstream", toxicity=0.5, attributes={"rate": 100})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bandwidth_upstream"}
    assert toxics["latency_downstream"].attributes == {"latency": 20, "jitter": 5}
    assert toxics["bandwidth_upstream"].toxicity == 0.5
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="bogus")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="bandwidth", name="neg", attributes={"rate": -1})
    assert proxy.destroy_toxic("latency_downstream") is True
    assert set(proxy.toxics()) == {"bandwidth_upstream"}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_disable_enable_and_reset(server: toxiproxy.Toxiproxy, echo: _Echo) -> None:
    proxy = server.create(upstream=echo.address, name="app")
    port = int(proxy.listen.rsplit(":", 1)[1])
    with proxy.down():
        assert server.get_proxy("app").enabled is False
        with pytest.raises(ConnectionRefusedError):
            _round_trip(port)
    assert _round_trip(port) == b"hello"

    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert server.reset() is True
    assert server.get_proxy("app").enabled is True
    assert proxy.toxics() == {}
    assert _round_trip(port) == b"hello"


def test_populate(server: toxiproxy.Toxiproxy, echo: _Echo) -> None:
    created = server.populate(
        [
            {"name": "a", "upstream": echo.address, "listen": "127.0.0.1:0"},
            {"name": "b", "upstream": echo.address, "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(p.name for p in created) == ["a", "b"]
    assert set(server.proxies()) == {"a", "b"}
