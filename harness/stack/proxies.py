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
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from harness.errors import StackStartError
from harness.faults.client import ToxiproxyClient, ToxiproxyError
from harness.stack._net import LOOPBACK
from harness.stack._process import RunDir, launch_on_free_port
from harness.stack._sql import run_coroutine_sync

__all__ = [
    "ToxiproxyKind",
    "ToxiproxyServer",
    "create_proxies",
    "delete_proxies",
    "start_toxiproxy",
]

ToxiproxyKind = Literal["external", "binary", "embedded"]


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
    kind: ToxiproxyKind = "binary" if binary is not None else "embedded"

    def argv(port: int) -> list[str]:
        if binary is not None:
            return [binary, "-host", LOOPBACK, "-port", str(port)]
        args = [sys.executable, "-m", "harness.faults", "--host", LOOPBACK, "--port", str(port)]
        args += ["--log-level", "WARNING"]
        return args + (["--seed", str(seed)] if seed is not None else [])

    def ready(port: int) -> Callable[[], str | None]:
        return lambda: _version(f"http://{LOOPBACK}:{port}")

    port, _proc, version = launch_on_free_port(
        run_dir,
        "toxiproxy",
        argv,
        ready,
        what=f"Toxiproxy ({kind})",
        stop_signal=signal.SIGTERM,
        timeout_s=startup_timeout_s,
    )
    return ToxiproxyServer(f"http://{LOOPBACK}:{port}", kind, str(version))


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
