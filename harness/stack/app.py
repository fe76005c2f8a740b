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

The reference can also run queue workers as processes of their own
(``AppSpec.queue_workers``: ``worker``, ``worker1``...), with no HTTP and no
proxy. Any process may be SIGKILLed and started again on its own port with
its own command line (:meth:`AppProcesses.kill`, :meth:`AppProcesses.restart`):
the crash-and-restart faults of ``chaos``.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, StackStartError
from harness.stack._net import LOOPBACK
from harness.stack._process import ManagedProcess, RunDir, launch_on_free_port

_log = logging.getLogger(__name__)

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
    #: Queue-worker-only processes of the reference (``--worker-only``),
    #: besides the server processes: a worker that can crash on its own.
    queue_workers: int = 0
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
        if not 0 <= self.queue_workers <= 8:
            raise ConfigError("queue_workers", f"must be in 0..8, got {self.queue_workers}")
        if self.queue_workers and self.argv is not None:
            raise ConfigError("queue_workers", "only the reference pipeline runs worker processes")
        if len(self.token_secret) < 32:
            raise ConfigError("token_secret", "must be at least 32 characters")
        if self.fanout not in FANOUTS:
            raise ConfigError("fanout", f"must be one of {', '.join(FANOUTS)}, got {self.fanout!r}")


#: How long a SIGKILLed process may take to be reaped.
_KILL_WAIT_S = 10.0
#: Starts of a restarted process that exits at once, at most.
_RESTART_ATTEMPTS = 20


class _ExitedAtOnce(StackStartError):
    """A restarted process exited before it was ready."""


@dataclass
class AppProcesses:
    """The running app: one entry per process, in launch order."""

    spec: AppSpec
    #: ``http://127.0.0.1:<port>`` of each process, direct (no proxy).
    direct_urls: list[str]
    processes: list[ManagedProcess] = field(default_factory=list)
    #: The queue-worker-only processes (``worker``, ``worker1``...).
    workers: list[ManagedProcess] = field(default_factory=list)
    #: How to start each process again, by name (same command line and port).
    _relaunch: dict[str, Callable[[], ManagedProcess]] = field(default_factory=dict, repr=False)

    @property
    def everyone(self) -> list[ManagedProcess]:
        """The server processes, then the worker-only ones."""
        return [*self.processes, *self.workers]

    def alive(self) -> bool:
        return all(p.alive() for p in self.everyone)

    @property
    def names(self) -> list[str]:
        """Every process's name: ``app``, ``app1``..., then ``worker``, ``worker1``..."""
        return [p.name for p in self.everyone]

    def process(self, name: str) -> ManagedProcess:
        for proc in self.everyone:
            if proc.name == name:
                return proc
        raise StackStartError(f"no app process named {name!r} (there are: {self.names})")

    def kill(self, name: str) -> None:
        """SIGKILL process ``name``: no clean shutdown, whatever it was doing
        (a transaction, a job, a half-written frame) is cut where it stood."""
        proc = self.process(name)
        if proc.alive():
            proc.popen.kill()
        try:
            proc.popen.wait(timeout=_KILL_WAIT_S)
        except subprocess.TimeoutExpired as exc:
            raise StackStartError(f"{name} (pid {proc.pid}) survived SIGKILL") from exc

    def restart(self, name: str, *, within_s: float = 60.0) -> ManagedProcess:
        """Start process ``name`` again (after :meth:`kill` or an exit) with
        its command line, environment and port; wait until it is ready.

        As a supervisor would: a process that exits at once (its database
        still out of reach, say) is started again after a pause that doubles
        (0.25 s to 2 s), until ``within_s`` has passed."""
        old = self.process(name)
        if old.alive():
            raise StackStartError(f"{name} (pid {old.pid}) is still running: kill it first")
        deadline = time.monotonic() + within_s
        pause_s = 0.25
        for attempt in range(1, _RESTART_ATTEMPTS + 1):
            try:
                new = self._relaunch[name]()
                break
            except _ExitedAtOnce as exc:
                if attempt == _RESTART_ATTEMPTS or time.monotonic() + pause_s >= deadline:
                    raise StackStartError(
                        f"{name} did not come back after {attempt} start(s): {exc}"
                    ) from exc
                _log.info("%s exited at once (start %d); starting it again", name, attempt)
                time.sleep(pause_s)  # a supervisor's back-off between starts
                pause_s = min(pause_s * 2, 2.0)
        for group in (self.processes, self.workers):
            if old in group:
                group[group.index(old)] = new
        return new


def _healthy(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout_s) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _http_probe(port: int) -> Callable[[], bool | None]:
    return lambda: True if _healthy(f"http://{LOOPBACK}:{port}") else None


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
    argv = _reference_argv(spec, pg_dsn, redis_url)
    argv += ["--host", LOOPBACK, "--port", str(port), "--log-level", "WARNING"]
    if spec.processes > 1 and spec.fanout == "redis":
        argv.append("--socketio-redis")
    if index > 0 and spec.fanout == "redis":
        argv.append("--no-relay")
    if not spec.worker:
        argv.append("--no-worker")
    return [*argv, *spec.extra_args]


def _reference_argv(spec: AppSpec, pg_dsn: str, redis_url: str) -> list[str]:
    """What every process of the reference is told: where its stores are, the
    token secret and the flaws."""
    argv = [sys.executable, "-m", "reference_impl", "--pg-dsn", pg_dsn, "--redis-url", redis_url]
    # One argument: a secret may start with "-" (token_urlsafe), which argparse
    # would take for an option of its own.
    argv.append(f"--token-secret={spec.token_secret}")
    for flaw in sorted(spec.flaws):
        argv += ["--flaw", flaw]
    return argv


def _worker_argv(spec: AppSpec, pg_dsn: str, redis_url: str) -> list[str]:
    # INFO: its readiness is the line "worker running on queue".
    argv = _reference_argv(spec, pg_dsn, redis_url)
    return [*argv, *spec.extra_args, "--worker-only", "--log-level", "INFO"]


_WORKER_READY = b"worker running on queue"


def _relauncher(
    run_dir: RunDir,
    name: str,
    argv: list[str],
    ready: Callable[[ManagedProcess, int], Callable[[], bool | None]],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    port: int | None = None,
) -> Callable[[], ManagedProcess]:
    """Start ``name`` again with ``argv``; with ``port``, ready only once it
    listens there (see :meth:`ManagedProcess.wait_ready`)."""

    def relaunch() -> ManagedProcess:
        old = next((c for c in run_dir.children if c.name == name), None)
        if old is not None:
            run_dir.forget(old)
        offset = _log_size(run_dir, name)
        proc = run_dir.spawn(name, argv, stop_signal=signal.SIGTERM, env=env, cwd=cwd)
        what = f"the app ({name}, restarted)"
        if proc.wait_ready(ready(proc, offset), timeout_s=timeout_s, what=what, port=port) is None:
            run_dir.forget(proc)
            raise _ExitedAtOnce(f"{what} exited at once:\n{proc.log_tail(5)}")
        return proc

    return relaunch


def _ready_on_port(port: int, _proc: ManagedProcess, _offset: int) -> Callable[[], bool | None]:
    return _http_probe(port)


def _log_size(run_dir: RunDir, name: str) -> int:
    try:
        return (run_dir.path / f"{name}.log").stat().st_size
    except OSError:
        return 0


def _logged_ready(proc: ManagedProcess, offset: int) -> Callable[[], bool | None]:
    def probe() -> bool | None:
        try:
            with proc.log_path.open("rb") as log:
                log.seek(offset)
                return True if _WORKER_READY in log.read() else None
        except OSError:
            return None

    return probe


def launch_app(
    run_dir: RunDir,
    spec: AppSpec,
    *,
    pg_dsn: str,
    redis_url: str,
    startup_timeout_s: float,
) -> AppProcesses:
    """Launch the processes one after another (the first migrates the schema),
    then the queue-worker-only processes."""
    app = AppProcesses(spec, [])
    timeout_s = min(startup_timeout_s, spec.startup_timeout_s)
    for index in range(spec.processes):
        name = "app" if index == 0 else f"app{index}"

        def argv(port: int, index: int = index) -> list[str]:
            return _argv(spec, index, pg_dsn, redis_url, port)

        def env(port: int, index: int = index) -> Mapping[str, str]:
            return contract_env(spec, index, pg_dsn, redis_url, port)

        port, proc, _ = launch_on_free_port(
            run_dir,
            name,
            argv,
            _http_probe,
            what=f"the app ({name})",
            stop_signal=signal.SIGTERM,
            timeout_s=timeout_s,
            env_for=env if spec.argv is not None else None,
            cwd=spec.cwd,
        )
        app.processes.append(proc)
        app.direct_urls.append(f"http://{LOOPBACK}:{port}")
        app._relaunch[name] = _relauncher(
            run_dir,
            name,
            argv(port),
            functools.partial(_ready_on_port, port),
            timeout_s=timeout_s,
            env=env(port) if spec.argv is not None else None,
            cwd=spec.cwd,
            port=port,
        )
    for index in range(spec.queue_workers):
        name = "worker" if index == 0 else f"worker{index}"
        launch = _relauncher(
            run_dir,
            name,
            _worker_argv(spec, pg_dsn, redis_url),
            _logged_ready,
            timeout_s=timeout_s,
            env=None,
            cwd=None,
        )
        app.workers.append(launch())
        app._relaunch[name] = launch
    return app
