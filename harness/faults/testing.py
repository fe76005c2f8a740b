"""Test seams: a TCP echo server that records what it saw (no mocks, a real socket).

Used by the fault tests and usable by scenario tests to check a hop end to end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["EchoServer", "ReceivedRead"]

READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class ReceivedRead:
    """One ``read()`` on the server side: which connection, how many bytes."""

    connection: int
    size: int


@dataclass
class EchoServer:
    """Echo every byte back on 127.0.0.1 at an ephemeral port.

    ``reads`` records the size of each server-side read (to observe slicing);
    ``connected`` is set on each new connection, ``disconnected`` on each clean
    EOF, which ``closed`` counts.
    """

    host: str = "127.0.0.1"
    port: int = 0
    reads: list[ReceivedRead] = field(default_factory=list)
    connections: int = 0
    closed: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> EchoServer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        index = self.connections
        self._writers.add(writer)
        self.connected.set()
        try:
            while data := await reader.read(READ_SIZE):
                self.reads.append(ReceivedRead(index, len(data)))
                writer.write(data)
                await writer.drain()
            self.closed += 1
            self.disconnected.set()
        except (ConnectionError, OSError):
            pass  # a reset from the proxy is what some tests provoke
        finally:
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> EchoServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
