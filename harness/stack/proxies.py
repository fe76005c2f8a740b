"""Toxiproxy in front of every service: the stack's fault-injection points.

Every connection to Postgres, Redis and the app goes through a named
Toxiproxy proxy (``postgres``, ``redis``, ``app``), so any scenario can cut,
slow or corrupt any hop. The Toxiproxy server is, in order of preference:

- ``external``: an existing server at ``TOXIPROXY_URL``;
- ``binary``: ``toxiproxy-server`` found on PATH, run as a child process;
- ``embedded``: alertbench's own Toxiproxy-compatible server
  (``python -m harness.faults``), run as a child process so that proxying
  never competes with the harness's own event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from harness.errors import StackStartError
from harness.faults.client import ToxiproxyClient, ToxiproxyError
from harness.stack._net import LOOPBACK, free_port
from harness.stack._process import ManagedProcess, RunDir
from harness.stack._sql import run_coroutine_sync

__all__ = [
    "ToxiproxyKind",
    "ToxiproxyServer",
    "create_proxies",
    "delete_proxies",
    "start_toxiproxy",
]

ToxiproxyKind = Literal["external", "binary", "embedded"]
_PORT_ATTEMPTS = 3
_POLL_S = 0.02


@dataclass(frozen=True)
class ToxiproxyServer:
    """Where the Toxiproxy API answers, and what kind of server it is."""

    url: str
    kind: ToxiproxyKind
    version: str
    #: Prepended to every proxy name. Empty on a server this stack owns; on an
    #: external server, which other runs may share, it keeps names apart.
    prefix: str = ""

    def proxy_name(self, logical: str) -> str:
        """The name on the server of the proxy called ``logical`` in the stack."""
        return f"{self.prefix}{logical}"


def _version(url: str, timeout_s: float = 0.5) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=timeout_s) as response:
            body = response.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip() or None
    return str(data.get("version")) if isinstance(data, dict) else str(data)


def _wait_ready(proc: ManagedProcess, url: str, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            return None
        if (version := _version(url)) is not None:
            return version
        time.sleep(_POLL_S)
    raise StackStartError(f"Toxiproxy was not ready after {timeout_s:g} s:\n{proc.log_tail()}")


def start_toxiproxy(
    *,
    external_url: str | None,
    run_dir: RunDir | None,
    seed: int | None,
    startup_timeout_s: float,
) -> ToxiproxyServer:
    """Attach to or launch a Toxiproxy server (see the module docstring)."""
    if external_url is not None:
        url = external_url.rstrip("/")
        version = _version(url, timeout_s=min(startup_timeout_s, 5.0))
        if version is None:
            raise StackStartError(f"TOXIPROXY_URL={external_url!r} does not answer GET /version")
        prefix = f"alertbench-{os.getpid()}-{secrets.token_hex(3)}-"
        return ToxiproxyServer(url, "external", version, prefix)
    if run_dir is None:
        raise StackStartError("internal error: launching Toxiproxy needs a run directory")
    binary = shutil.which("toxiproxy-server")
    last_log = ""
    for _ in range(_PORT_ATTEMPTS):
        port = free_port()
        if binary is not None:
            kind: ToxiproxyKind = "binary"
            argv = [binary, "-host", LOOPBACK, "-port", str(port)]
        else:
            kind = "embedded"
            argv = [sys.executable, "-m", "harness.faults", "--host", LOOPBACK, "--port", str(port)]
            argv += ["--log-level", "WARNING"]
            if seed is not None:
                argv += ["--seed", str(seed)]
        proc = run_dir.spawn("toxiproxy", argv, stop_signal=signal.SIGTERM)
        url = f"http://{LOOPBACK}:{port}"
        version = _wait_ready(proc, url, startup_timeout_s)
        if version is not None:
            return ToxiproxyServer(url, kind, version)
        last_log = proc.log_tail()
        proc.stop()
        if "in use" not in last_log:
            break
    raise StackStartError(f"Toxiproxy ({kind}) did not start:\n{last_log}")


def create_proxies(
    server: ToxiproxyServer, upstreams: Mapping[str, tuple[str, int]], *, timeout_s: float = 10.0
) -> dict[str, int]:
    """Create (or replace) one proxy per upstream; return each one's listen port.

    Keys are the stack's logical names (``postgres``); the proxies on the
    server are named :meth:`ToxiproxyServer.proxy_name` of them.
    """

    async def populate() -> dict[str, int]:
        async with ToxiproxyClient(server.url, timeout_s=timeout_s) as client:
            proxies = await client.populate(
                [
                    {
                        "name": server.proxy_name(name),
                        "upstream": f"{host}:{port}",
                        "listen": f"{LOOPBACK}:0",
                    }
                    for name, (host, port) in upstreams.items()
                ]
            )
        ports = {p.name: p.listen_port for p in proxies}
        return {name: ports[server.proxy_name(name)] for name in upstreams}

    return run_coroutine_sync(populate, timeout_s=timeout_s * 2)


def delete_proxies(
    server: ToxiproxyServer, names: Iterable[str], *, timeout_s: float = 5.0
) -> None:
    """Remove the stack's proxies from a server it does not own (best effort)."""

    async def delete() -> None:
        async with ToxiproxyClient(server.url, timeout_s=timeout_s) as client:
            for name in names:
                with contextlib.suppress(ToxiproxyError, OSError):
                    await client.delete_proxy(server.proxy_name(name))

    run_coroutine_sync(delete, timeout_s=timeout_s * 4)
