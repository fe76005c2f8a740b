"""The system under test as processes of the stack.

:func:`launch_app` launches N server processes against the stack's (proxied)
Postgres and Redis; the stack puts each behind its own named Toxiproxy proxy
(``app``, ``app1``, ...), so that client -> app is a hop faults can cut like
the others. Two kinds of process:

- the reference pipeline (``python -m reference_impl``, told everything by
  its flags): with several processes, Socket.IO emits go through
  python-socketio's Redis manager and only the first runs the relay;
- any other implementation (``AppSpec.argv``, a target file's command), told
  everything by the contract's environment variables: ``PG_DSN``,
  ``REDIS_URL``, ``HOST``, ``PORT``, ``TOKEN_SECRET``,
  ``ALERTBENCH_PROCESS_INDEX`` and ``ALERTBENCH_PROCESSES``.
"""

from __future__ import annotations

import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.stack._net import LOOPBACK
from harness.stack._process import ManagedProcess, RunDir, launch_on_free_port

__all__ = [
    "DEFAULT_TOKEN_SECRET",
    "FANOUTS",
    "AppProcesses",
    "AppSpec",
    "contract_env",
    "launch_app",
]

#: How a committed alert reaches the clients of every app process.
FANOUTS: tuple[str, ...] = ("redis", "listen")

#: The reference pipeline's development secret (127.0.0.1 only).
DEFAULT_TOKEN_SECRET = "alertbench-dev-secret-not-for-production"


@dataclass(frozen=True, kw_only=True)
class AppSpec:
    """How to run the reference pipeline."""

    #: Named flaws to switch on (validated by the app; see ``reference_impl.Flaw``).
    flaws: frozenset[str] = frozenset()
    #: Server processes; see ``fanout`` for how an alert reaches every process.
    processes: int = 1
    #: With several processes: ``redis`` (one relay; its emits cross processes
    #: through python-socketio's Redis manager) or ``listen`` (every process
    #: runs the LISTEN/NOTIFY relay and emits to its own clients; Postgres is
    #: the fan-out, no Socket.IO pub/sub hop).
    fanout: str = "redis"
    #: Run a queue worker in each process.
    worker: bool = True
    #: Database on the stack's Postgres (created if missing).
    database: str = "alertbench"
    #: HS256 secret of bearer tokens; the harness mints tokens with it.
    token_secret: str = DEFAULT_TOKEN_SECRET
    #: Extra command-line arguments for ``python -m reference_impl``.
    extra_args: tuple[str, ...] = ()
    #: Another implementation's command line (a target file's ``[command]
    #: argv``); None: the reference pipeline.
    argv: tuple[str, ...] | None = None
    #: Its working directory (None: the run directory).
    cwd: Path | None = None
    #: Extra environment of every process (flaws and fault injection of a
    #: command target, the target file's own variables).
    env: Mapping[str, str] = field(default_factory=dict)
    #: How long each process may take to answer ``/healthz``.
    startup_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.processes <= 32:
            raise ConfigError("processes", f"must be in 1..32, got {self.processes}")
        if len(self.token_secret) < 32:
            raise ConfigError("token_secret", "must be at least 32 characters")
        if self.fanout not in FANOUTS:
            raise ConfigError("fanout", f"must be one of {', '.join(FANOUTS)}, got {self.fanout!r}")


@dataclass
class AppProcesses:
    """The running app: one entry per process, in launch order."""

    spec: AppSpec
    #: ``http://127.0.0.1:<port>`` of each process, direct (no proxy).
    direct_urls: list[str]
    processes: list[ManagedProcess] = field(default_factory=list)

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes)


def _healthy(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout_s) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def contract_env(
    spec: AppSpec, index: int, pg_dsn: str, redis_url: str, port: int
) -> dict[str, str]:
    """The environment of a command target's process ``index`` (the contract's variables)."""
    return {
        **os.environ,
        **spec.env,
        "PG_DSN": pg_dsn,
        "REDIS_URL": redis_url,
        "HOST": LOOPBACK,
        "PORT": str(port),
        "TOKEN_SECRET": spec.token_secret,
        "ALERTBENCH_PROCESS_INDEX": str(index),
        "ALERTBENCH_PROCESSES": str(spec.processes),
    }


def _argv(spec: AppSpec, index: int, pg_dsn: str, redis_url: str, port: int) -> list[str]:
    if spec.argv is not None:
        return list(spec.argv)
    argv = [sys.executable, "-m", "reference_impl", "--pg-dsn", pg_dsn, "--redis-url", redis_url]
    argv += ["--host", LOOPBACK, "--port", str(port), "--log-level", "WARNING"]
    # One argument: a secret may start with "-" (token_urlsafe), which argparse
    # would take for an option of its own.
    argv.append(f"--token-secret={spec.token_secret}")
    for flaw in sorted(spec.flaws):
        argv += ["--flaw", flaw]
    if spec.processes > 1 and spec.fanout == "redis":
        argv.append("--socketio-redis")
    if index > 0 and spec.fanout == "redis":
        argv.append("--no-relay")
    if not spec.worker:
        argv.append("--no-worker")
    return [*argv, *spec.extra_args]


def launch_app(
    run_dir: RunDir,
    spec: AppSpec,
    *,
    pg_dsn: str,
    redis_url: str,
    startup_timeout_s: float,
) -> AppProcesses:
    """Launch the processes one after another (the first migrates the schema)."""
    app = AppProcesses(spec, [])
    for index in range(spec.processes):
        name = "app" if index == 0 else f"app{index}"

        def argv(port: int, index: int = index) -> list[str]:
            return _argv(spec, index, pg_dsn, redis_url, port)

        def ready(port: int) -> Callable[[], bool | None]:
            return lambda: True if _healthy(f"http://{LOOPBACK}:{port}") else None

        def env(port: int, index: int = index) -> Mapping[str, str]:
            return contract_env(spec, index, pg_dsn, redis_url, port)

        port, proc, _ = launch_on_free_port(
            run_dir,
            name,
            argv,
            ready,
            what=f"the app ({name})",
            stop_signal=signal.SIGTERM,
            timeout_s=min(startup_timeout_s, spec.startup_timeout_s),
            env_for=env if spec.argv is not None else None,
            cwd=spec.cwd,
        )
        app.processes.append(proc)
        app.direct_urls.append(f"http://{LOOPBACK}:{port}")
    return app
