"""The same fault tests against every Toxiproxy backend: embedded, external, binary, Docker.

- ``embedded``: the harness's own server (always available);
- ``external``: the server at ``TOXIPROXY_URL`` (it must reach, and be reached on, 127.0.0.1);
- ``binary``: ``toxiproxy-server`` from PATH, started on an ephemeral port;
- ``docker``: the ``ghcr.io/shopify/toxiproxy`` image on the host network, when Docker answers.

Only behaviour both implementations share is tested here; the embedded
server's extensions and stricter validation are tested in tests/unit/faults.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from harness.faults import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    ToxiproxyClient,
    ToxiproxyThread,
    latency,
    partition,
)
from harness.faults.testing import EchoServer

pytestmark = pytest.mark.integration

IO_TIMEOUT_S = 5.0
START_TIMEOUT_S = 30.0
DOCKER_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/version", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)  # polling a child process, not synchronising tests
    raise TimeoutError(f"no Toxiproxy answered at {url} within {START_TIMEOUT_S} s")


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="module", params=["embedded", "external", "binary", "docker"])
def toxiproxy_url(request: pytest.FixtureRequest) -> Iterator[str]:
    backend: str = request.param
    if backend == "embedded":
        with ToxiproxyThread(seed=1) as thread:
            yield thread.url
    elif backend == "external":
        url = os.environ.get("TOXIPROXY_URL")
        if not url:
            pytest.skip("external: TOXIPROXY_URL is not set")
        yield url.rstrip("/")
    elif backend == "binary":
        binary = shutil.which("toxiproxy-server")
        if binary is None:
            pytest.skip("binary: toxiproxy-server is not on PATH")
        port = _free_port()
        with subprocess.Popen(
            [binary, "-host", "127.0.0.1", "-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as proc:
            try:
                _wait_ready(f"http://127.0.0.1:{port}")
                yield f"http://127.0.0.1:{port}"
            finally:
                proc.terminate()
                proc.wait(IO_TIMEOUT_S)
    else:
        if not _docker_answers():
            pytest.skip("docker: no Docker engine answers `docker info`")
        port = _free_port()
        run = ["docker", "run", "--rm", "-d", "--network", "host", DOCKER_IMAGE]
        started = subprocess.run(
            [*run, "-host", "127.0.0.1", "-port", str(port)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        container = started.stdout.strip()
        try:
            _wait_ready(f"http://127.0.0.1:{port}")
            yield f"http://127.0.0.1:{port}"
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)


@pytest.fixture
async def tp(toxiproxy_url: str) -> AsyncIterator[ToxiproxyClient]:
    async with ToxiproxyClient(toxiproxy_url) as client:
        for name in await client.proxies():
            await client.delete_proxy(name)
        yield client
        for name in await client.proxies():
            await client.delete_proxy(name)


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(IO_TIMEOUT_S):
        return await asyncio.open_connection("127.0.0.1", port)


async def _round_trip(port: int, payload: bytes = b"ping") -> float:
    reader, writer = await _connect(port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    writer.write(payload)
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert await reader.readexactly(len(payload)) == payload
    elapsed = loop.time() - start
    writer.close()
    return elapsed


async def _closed(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(IO_TIMEOUT_S):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True


async def test_proxy_crud_and_errors(tp: ToxiproxyClient, echo: EchoServer) -> None:
    proxy = await tp.create_proxy("app", upstream=echo.address)
    assert proxy.enabled
    assert proxy.listen_port > 0
    assert (await tp.get_proxy("app")).upstream == echo.address
    with pytest.raises(ConflictError):
        await tp.create_proxy("app", upstream=echo.address)
    with pytest.raises(NotFoundError):
        await tp.get_proxy("nope")
    with pytest.raises(BadRequestError):
        await tp.add_toxic("app", "no_such_toxic")
    with pytest.raises(BadRequestError):
        await tp.add_toxic("app", "latency", stream="sideways")  # type: ignore[arg-type]
    await tp.add_toxic("app", "latency")
    with pytest.raises(ConflictError):
        await tp.add_toxic("app", "latency")
    with pytest.raises(NotFoundError):
        await tp.remove_toxic("app", "nope")
    await tp.delete_proxy("app")
    assert await tp.proxies() == {}


async def test_latency_toxic_delays(tp: ToxiproxyClient, echo: EchoServer) -> None:
    proxy = await tp.create_proxy("app", upstream=echo.address)
    async with latency(tp, "app", ms=60):
        assert await _round_trip(proxy.listen_port) >= 0.060
    assert await tp.toxics("app") == []


async def test_timeout_and_reset_peer(tp: ToxiproxyClient, echo: EchoServer) -> None:
    proxy = await tp.create_proxy("app", upstream=echo.address)
    await tp.add_toxic("app", "timeout", attributes={"timeout": 100})
    reader, writer = await _connect(proxy.listen_port)
    writer.write(b"lost")
    assert await _closed(reader)
    writer.close()
    await tp.remove_toxic("app", "timeout_downstream")

    await tp.add_toxic("app", "reset_peer", attributes={"timeout": 0})
    reader, writer = await _connect(proxy.listen_port)
    writer.write(b"x")
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(IO_TIMEOUT_S):
            await reader.read(1)
    writer.close()


async def test_limit_data(tp: ToxiproxyClient, echo: EchoServer) -> None:
    proxy = await tp.create_proxy("app", upstream=echo.address)
    await tp.add_toxic("app", "limit_data", attributes={"bytes": 10})
    reader, writer = await _connect(proxy.listen_port)
    writer.write(bytes(100))
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert len(await reader.read()) == 10
    writer.close()


async def test_disable_enable_and_reset(tp: ToxiproxyClient, echo: EchoServer) -> None:
    proxy = await tp.create_proxy("app", upstream=echo.address)
    reader, writer = await _connect(proxy.listen_port)
    await tp.disable("app")
    assert await _closed(reader)
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await _connect(proxy.listen_port)
    await tp.add_toxic("app", "latency", attributes={"latency": 1})
    await tp.reset()
    assert (await tp.get_proxy("app")).enabled
    assert await tp.toxics("app") == []
    await _round_trip(proxy.listen_port)


async def test_partition_package(tp: ToxiproxyClient, echo: EchoServer) -> None:
    proxy = await tp.create_proxy("app", upstream=echo.address)
    reader, writer = await _connect(proxy.listen_port)
    async with partition(tp, "app"):
        writer.write(b"lost")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.read(1)
    writer.close()
    await _round_trip(proxy.listen_port)
