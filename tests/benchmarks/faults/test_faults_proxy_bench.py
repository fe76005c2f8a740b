"""Accuracy and overhead of the embedded Toxiproxy (issue 6, point 4).

Three processes, as in a real run: a blocking echo server, the embedded proxy
(``python -m harness.faults``), and this process as a blocking client doing
64-byte request/response round trips over one connection.

    pytest tests/benchmarks/faults --benchmark-only    # figures + target checks
    python tests/benchmarks/faults/test_faults_proxy_bench.py   # a summary table

Targets are checked only when benchmarks are enabled; under
``--benchmark-disable`` (the tests session) each body runs once as a smoke test.
"""

from __future__ import annotations

import re
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

MESSAGE = bytes(64)
IO_TIMEOUT_S = 10.0
START_TIMEOUT_S = 15.0
LATENCY_MS = 50
RATE_KB_S = 1000
TRANSFER_BYTES = 1_000_000

_ECHO_SERVER = """
import socket, sys, threading
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
def echo(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while data := conn.recv(1 << 20):
            conn.sendall(data)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
"""


def _read_line(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """Read the child's output until ``pattern`` matches (bounded by START_TIMEOUT_S)."""
    stream = proc.stdout if proc.stdout is not None else proc.stderr
    assert stream is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = stream.readline()
                if not line:
                    break
                if match := re.search(pattern, line):
                    return match
    raise TimeoutError(f"child did not print {pattern!r}")


@dataclass
class Setup:
    echo_port: int
    api: httpx.Client

    def proxy(self, name: str) -> int:
        self.api.delete(f"/proxies/{name}")
        body = {"name": name, "upstream": f"127.0.0.1:{self.echo_port}"}
        response = self.api.post("/proxies", json=body)
        response.raise_for_status()
        return int(response.json()["listen"].rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    echo = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "harness.faults", "--port", "0", "--seed", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        echo_port = int(_read_line(echo, r"^(\d+)").group(1))
        url = _read_line(proxy, r"(http://127\.0\.0\.1:\d+)").group(1)
        with httpx.Client(base_url=url, timeout=IO_TIMEOUT_S) as api:
            yield Setup(echo_port, api)
    finally:
        for child in (proxy, echo):
            child.terminate()
            child.wait(IO_TIMEOUT_S)
            for pipe in (child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> None:
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("closed early")
        remaining -= len(chunk)


def round_trips(port: int, count: int, warm_up: int = 200) -> list[float]:
    """``count`` 64-byte round trips over one connection; each RTT in seconds."""
    with _connect(port) as sock:
        for _ in range(warm_up):
            sock.sendall(MESSAGE)
            _recv_exactly(sock, len(MESSAGE))
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(MESSAGE)
            _recv_exactly(sock, len(MESSAGE))
            samples.append(time.perf_counter() - start)
    return samples


def transfer_rate_kb_s(port: int, size: int) -> float:
    """Send ``size`` bytes through the echo and time their return, in KB/s (1000 B)."""
    payload = bytes(size)
    with _connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        _recv_exactly(sock, size)
        return size / 1000 / (time.perf_counter() - start)


def _p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(setup: Setup, count: int = 20_000) -> dict[str, float]:
    """Every figure of point 4, as a dict (used by the script entry point)."""
    direct = round_trips(setup.echo_port, count)
    proxied = round_trips(setup.proxy("bench"), count)
    port = setup.proxy("latency")
    setup.api.post(
        "/proxies/latency/toxics", json={"type": "latency", "attributes": {"latency": LATENCY_MS}}
    ).raise_for_status()
    delayed = round_trips(port, 60, warm_up=0)
    port = setup.proxy("bandwidth")
    setup.api.post(
        "/proxies/bandwidth/toxics", json={"type": "bandwidth", "attributes": {"rate": RATE_KB_S}}
    ).raise_for_status()
    rate = transfer_rate_kb_s(port, TRANSFER_BYTES)
    return {
        "direct_p50_ms": _p50_ms(direct),
        "proxy_p50_ms": _p50_ms(proxied),
        "proxy_overhead_p50_ms": _p50_ms(proxied) - _p50_ms(direct),
        "direct_rt_per_s": count / sum(direct),
        "proxy_rt_per_s": count / sum(proxied),
        "latency_added_p50_ms": _p50_ms(delayed) - _p50_ms(proxied),
        "bandwidth_kb_s": rate,
    }


def _record(benchmark: Any, **info: float) -> None:
    benchmark.extra_info.update({k: round(v, 4) for k, v in info.items()})


def test_proxy_overhead_and_round_trips(benchmark: Any, setup: Setup) -> None:
    port = setup.proxy("overhead")
    direct = round_trips(setup.echo_port, 5000)
    proxied: list[float] = benchmark.pedantic(round_trips, args=(port, 5000), rounds=3)
    overhead_ms = _p50_ms(proxied) - _p50_ms(direct)
    rate = len(proxied) / sum(proxied)
    _record(
        benchmark,
        proxy_overhead_p50_ms=overhead_ms,
        proxy_rt_per_s=rate,
        direct_rt_per_s=len(direct) / sum(direct),
    )
    if not benchmark.disabled:
        assert overhead_ms < 0.5
        # 10,000/s is the target where a direct connection does 25,000-30,000/s;
        # on a busier machine, hold the same ratio instead.
        assert rate >= min(10_000, 0.4 * len(direct) / sum(direct))


def test_latency_accuracy(benchmark: Any, setup: Setup) -> None:
    port = setup.proxy("latency")
    base = round_trips(port, 500)
    body = {"type": "latency", "attributes": {"latency": LATENCY_MS}}
    setup.api.post("/proxies/latency/toxics", json=body).raise_for_status()
    delayed: list[float] = benchmark.pedantic(round_trips, args=(port, 60, 0), rounds=1)
    added_ms = _p50_ms(delayed) - _p50_ms(base)
    _record(benchmark, latency_added_p50_ms=added_ms, configured_ms=LATENCY_MS)
    assert added_ms >= LATENCY_MS - 0.1  # a lower bound holds on any machine
    if not benchmark.disabled:
        assert abs(added_ms - LATENCY_MS) <= 2


def test_bandwidth_accuracy(benchmark: Any, setup: Setup) -> None:
    port = setup.proxy("bandwidth")
    body = {"type": "bandwidth", "attributes": {"rate": RATE_KB_S}}
    setup.api.post("/proxies/bandwidth/toxics", json=body).raise_for_status()
    rate: float = benchmark.pedantic(transfer_rate_kb_s, args=(port, TRANSFER_BYTES), rounds=2)
    _record(benchmark, bandwidth_kb_s=rate, configured_kb_s=RATE_KB_S)
    if not benchmark.disabled:
        assert abs(rate - RATE_KB_S) <= 0.10 * RATE_KB_S


def main() -> None:
    gen = setup.__wrapped__()  # type: ignore[attr-defined]
    figures = measure(next(gen))
    for key, value in figures.items():
        print(f"{key:>24}: {value:12.3f}")
    ratio = figures["proxy_rt_per_s"] / figures["direct_rt_per_s"]
    print(f"{'proxy/direct ratio':>24}: {ratio:12.3f}")
    gen.close()


if __name__ == "__main__":
    main()
