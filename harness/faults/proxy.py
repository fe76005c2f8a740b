"""The TCP proxy: a listener on 127.0.0.1, one connection per client, toxics per proxy.

Connection lifecycle follows Toxiproxy: when one direction ends (EOF from its
source, or a toxic closing it) the socket it writes to is closed, which ends
the other direction in turn, so ``slow_close`` and friends see the close.
A disabled proxy stops listening (new connections are refused) and drops its
open connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from typing import cast

from harness.faults.link import Link
from harness.faults.toxics import Toxic

__all__ = ["AddressError", "Connection", "Proxy", "parse_address"]

logger = logging.getLogger(__name__)

STREAMS = ("upstream", "downstream")
UPSTREAM_CONNECT_TIMEOUT_S = 10.0


class AddressError(ValueError):
    """A listen or upstream address is malformed or not allowed."""


def parse_address(value: str, *, field: str, listen: bool) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too). Listen addresses must be loopback.

    An empty listen address or host means 127.0.0.1 with an ephemeral port; the
    embedded server never listens beyond the loopback interface.
    """
    if listen and value == "":
        return "127.0.0.1", 0
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise AddressError(f"{field} must be host:port, got {value!r}")
    host = host.removeprefix("[").removesuffix("]")
    if not listen:
        if not host:
            raise AddressError(f"{field} must name a host, got {value!r}")
        return host, int(port_text)
    if host in ("", "localhost"):
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise AddressError(f"{field} must be a loopback address (127.0.0.1), got {value!r}")
    return host, int(port_text)


class _Side(asyncio.Protocol):
    """One socket of a connection; feeds the link that reads from it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.reads: Link | None = None
        self.writes: Link | None = None
        self.lost = False
        # Bytes (and EOF) that arrive before the links exist: uvloop may start
        # reading before a pause_reading() from connection_made takes effect.
        self.early: list[bytes] = []
        self.early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        link = self.reads
        if link is None:
            self.early.append(data)
        elif (
            not link.stages
            and not link.input_closed
            and not link.output_closed
            and not link.dest.is_closing()
        ):
            # The relay fast path, the same as link.feed() with no toxic but
            # without its two Python calls per chunk: most chunks take it.
            link.dest.write(data)
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        if self.reads is not None:
            self.reads.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket writable until the other direction ends

    def attach(self, reads: Link, writes: Link) -> None:
        """Join the links; what arrived before them is fed first, in order."""
        self.reads, self.writes = reads, writes
        early, self.early = self.early, []
        for data in early:
            reads.feed(data)
        if self.early_eof:
            reads.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.reads is not None:
            self.reads.feed_eof()
        self.conn.side_lost()

    def pause_writing(self) -> None:
        if self.writes is not None:
            self.writes.pause("dest")

    def resume_writing(self) -> None:
        if self.writes is not None:
            self.writes.resume("dest")


class _ClientSide(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn.client_connected(self)


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(self, proxy: Proxy, index: int) -> None:
        self.proxy = proxy
        self.index = index
        self.client = _ClientSide(self)
        self.upstream = _Side(self)
        self.links: dict[str, Link] = {}
        self._dial: asyncio.Task[None] | None = None

    def client_connected(self, side: _ClientSide) -> None:
        assert side.transport is not None
        side.transport.pause_reading()  # until the upstream answers
        self.proxy.connections.add(self)
        self.proxy.idle.clear()
        self._dial = asyncio.get_running_loop().create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = parse_address(self.proxy.upstream, field="upstream", listen=False)
        try:
            async with asyncio.timeout(UPSTREAM_CONNECT_TIMEOUT_S):
                await loop.create_connection(lambda: self.upstream, host, port)
        except (OSError, TimeoutError) as exc:
            logger.warning("proxy %s: cannot reach upstream %s: %s", self.proxy.name, host, exc)
            self.abort()
            return
        client_t, upstream_t = self.client.transport, self.upstream.transport
        assert client_t is not None
        assert upstream_t is not None
        if self.client.lost:
            upstream_t.close()
            return
        key = f"{self.proxy.seed}|{self.proxy.name}|{self.index}"
        up = Link(self, "upstream", client_t, upstream_t, key)
        down = Link(self, "downstream", upstream_t, client_t, key)
        self.links = {"upstream": up, "downstream": down}
        for toxic in self.proxy.toxics:
            self.links[toxic.stream].add_toxic(toxic)
        self.client.attach(up, down)
        self.upstream.attach(down, up)
        client_t.resume_reading()

    def link_closed(self, link: Link) -> None:
        if not link.dest.is_closing():
            link.dest.close()

    def reset(self) -> None:
        for side in (self.client, self.upstream):
            transport = side.transport
            if transport is None or transport.is_closing():
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER with a zero timeout makes close() send a RST.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

    def abort(self) -> None:
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()
        self._forget()

    def side_lost(self) -> None:
        # Once one socket is gone the other can only drain; finish when both are.
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            self._forget()
        elif self.upstream.lost and not self.links:
            # The upstream went away before the links existed.
            transport = self.client.transport
            if transport is not None and not transport.is_closing():
                transport.close()

    def _forget(self) -> None:
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            for link in self.links.values():
                link.shutdown()
            self.proxy.forget(self)


class Proxy:
    """A named proxy: ``listen`` on loopback, forwarding to ``upstream``, with toxics."""

    def __init__(self, name: str, listen: str, upstream: str, *, seed: int) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.seed = seed
        self.toxics: list[Toxic] = []
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._accepted = 0
        self.idle = asyncio.Event()
        """Set while the proxy has no open connection."""
        self.idle.set()

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self.idle.set()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_json(),
        }

    def toxic_json(self) -> list[dict[str, object]]:
        ordered = sorted(self.toxics, key=lambda t: STREAMS.index(t.stream))
        return [toxic.to_json() for toxic in ordered]

    def _new_connection(self) -> asyncio.Protocol:
        self._accepted += 1
        return Connection(self, self._accepted).client

    async def start(self) -> None:
        """Listen (no-op if enabled). Raises OSError if the address is taken."""
        if self.enabled:
            return
        host, port = parse_address(self.listen, field="listen", listen=True)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, host, port)
        bound = self._server.sockets[0].getsockname()
        self.listen = (
            f"{bound[0]}:{bound[1]}" if ":" not in bound[0] else f"[{bound[0]}]:{bound[1]}"
        )
        self.enabled = True
        logger.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening and drop every open connection (no-op if disabled)."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        self.idle.set()
        logger.info("proxy %s stopped", self.name)

    async def update(self, *, listen: str, upstream: str, enabled: bool) -> None:
        """Toxiproxy's update: a new address restarts the proxy, then apply ``enabled``."""
        if listen != self.listen or upstream != self.upstream:
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled:
            await self.stop()

    # -- toxics -------------------------------------------------------------
    def find_toxic(self, name: str) -> Toxic | None:
        return next((t for t in self.toxics if t.name == name), None)

    def add_toxic(self, toxic: Toxic) -> None:
        self.toxics.append(toxic)
        for conn in list(self.connections):
            if conn.links:
                conn.links[toxic.stream].add_toxic(toxic)

    async def update_toxic(self, toxic: Toxic) -> None:
        self.toxics = [toxic if t.name == toxic.name else t for t in self.toxics]
        await asyncio.gather(
            *(c.links[toxic.stream].update_toxic(toxic) for c in self.connections if c.links)
        )

    async def remove_toxic(self, name: str) -> None:
        toxic = self.find_toxic(name)
        if toxic is None:
            return
        self.toxics.remove(toxic)
        await asyncio.gather(
            *(c.links[toxic.stream].remove_toxic(name) for c in list(self.connections) if c.links)
        )

    async def reset_toxics(self) -> None:
        for toxic in list(self.toxics):
            await self.remove_toxic(toxic.name)
