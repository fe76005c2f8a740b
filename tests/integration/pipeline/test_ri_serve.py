"""``python -m reference_impl`` serves the API and worker against the stack."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reference_impl",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _wait_for_line(process: asyncio.subprocess.Process, text: str) -> list[str]:
    """Read stderr until a line contains ``text`` (bounded in time and lines)."""
    assert process.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        for _ in range(1000):
            line = (await process.stderr.readline()).decode()
            if not line:
                break
            seen.append(line)
            if text in line:
                return seen
    raise AssertionError(f"{text!r} never logged; got: {''.join(seen)}")


async def test_serves_api_and_stops_cleanly_on_sigterm(pg_dsn: str, redis_url: str) -> None:
    port = _free_port()
    process = await _start(
        "--pg-dsn", pg_dsn, "--redis-url", redis_url, "--port", str(port), "--flaw", "no_retry"
    )
    try:
        lines = await _wait_for_line(process, "Application startup complete")
        assert any("flaws: no_retry" in line for line in lines)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200
            assert health.json()["postgres"] is True
            assert "/api/alerts/generate" in (await http.get("/openapi.json")).json()["paths"]
            assert "alertbench_alert_generation_seconds" in (await http.get("/metrics")).text
        process.send_signal(signal.SIGTERM)
        await _wait_for_line(process, "Application shutdown complete")
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown.
        code = await asyncio.wait_for(process.wait(), timeout=STARTUP_TIMEOUT_S)
        assert code in (0, -signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_unreachable_postgres_is_a_clear_error(redis_url: str) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{_free_port()}/nowhere"
    process = await _start("--pg-dsn", dsn, "--redis-url", redis_url, "--port", "0")
    assert process.stderr is not None
    stderr = await asyncio.wait_for(process.stderr.read(), timeout=STARTUP_TIMEOUT_S)
    assert await asyncio.wait_for(process.wait(), timeout=STARTUP_TIMEOUT_S) == 1
    assert "cannot connect to Postgres" in stderr.decode()
    assert "Traceback" not in stderr.decode()
