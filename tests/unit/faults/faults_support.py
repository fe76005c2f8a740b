"""What the fault tests share: a proxy hop in front of a real TCP echo server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.faults import EmbeddedToxiproxy, ToxiproxyClient
from harness.faults.testing import EchoServer

IO_TIMEOUT_S = 5.0


@dataclass
class Hop:
    """An embedded Toxiproxy, its client, an echo server and the proxy's port."""

    server: EmbeddedToxiproxy
    tp: ToxiproxyClient
    echo: EchoServer
    port: int

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(IO_TIMEOUT_S):
            return await asyncio.open_connection("127.0.0.1", self.port)
