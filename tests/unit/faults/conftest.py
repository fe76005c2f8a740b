"""Fixtures of the fault tests: ``hop`` (override ``hop_seed`` / ``hop_proxy`` per module)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faults_support import Hop

from harness.faults import EmbeddedToxiproxy, ToxiproxyClient
from harness.faults.testing import EchoServer


@pytest.fixture
def hop_seed() -> int:
    """Seed of the embedded server's toxicity rolls and jitter."""
    return 7


@pytest.fixture
def hop_proxy() -> str:
    """Name of the proxy in front of the echo server."""
    return "app"


@pytest.fixture
async def hop(hop_seed: int, hop_proxy: str) -> AsyncIterator[Hop]:
    async with (
        EchoServer() as echo,
        EmbeddedToxiproxy(seed=hop_seed) as server,
        ToxiproxyClient(server.url) as tp,
    ):
        proxy = await tp.create_proxy(hop_proxy, upstream=echo.address)
        yield Hop(server, tp, echo, proxy.listen_port)
