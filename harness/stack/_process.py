"""Child processes the stack owns, and the run directory that proves it.

Every embedded service runs as a child process launched from a *run
directory* (``<tmp>/alertbench-run-*``) that holds its data and log files and
an ownership record, ``alertbench-run.json``: the owner's pid and start time
and each child's pid, start time and name. The record is what lets a later
start reap what a killed owner left behind (see :func:`reap_leftovers`) while
never touching a process that merely reused a pid: a process is ours only if
its pid, its start time *and* its command line (which names the run
directory) all match.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

from harness.errors import StackStartError
from harness.stack._net import free_port

__all__ = ["ManagedProcess", "RunDir", "launch_on_free_port", "reap_leftovers"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

RUN_PREFIX = "alertbench-run-"
RECORD = "alertbench-run.json"
MAGIC = "alertbench-run/1"
#: Set in every child's environment to its run directory (proof of ownership).
RUN_DIR_ENV = "ALERTBENCH_RUN_DIR"
#: Start times are floats from /proc; allow for rounding between reads.
_CREATE_TIME_SLACK_S = 0.05


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


@dataclass
class ManagedProcess:
    """One child process: how to stop it and where its log is."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    #: Signal that asks the process for a clean, fast shutdown.
    stop_signal: int
    create_time: float
    #: Size of the log file when this process started: its own output starts
    #: there (a restarted process appends to its predecessor's log).
    log_start: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def listens_on(self, port: int) -> bool:
        """True if this process, or one it started, has a TCP socket listening
        on ``port``. (True as well where the sockets cannot be read.)"""
        try:
            tree = [psutil.Process(self.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.Error:
            return False
        unreadable = False
        for proc in tree:
            try:
                sockets = proc.net_connections(kind="tcp")
            except psutil.AccessDenied:
                unreadable = True
                continue
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets):
                return True
        return unreadable

    def wait_ready(
        self,
        probe: Callable[[], T | None],
        *,
        timeout_s: float,
        what: str,
        port: int | None = None,
        poll_s: float = 0.02,
    ) -> T | None:
        """Poll ``probe`` until it answers (not ``None``); ``None`` if the process exited.

        With ``port``, an answer counts only once this process listens on that
        port: a port found free a moment ago can be taken by another server
        (another run's app, on a busy machine) before ours binds it; ours then
        exits ("address in use") while the other one answers the probe.

        Bounded: raises :class:`StackStartError` with the log's tail after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                return None
            answer = probe()
            if answer is not None and (port is None or self.listens_on(port)):
                return answer
            time.sleep(poll_s)
        raise StackStartError(f"{what} was not ready after {timeout_s:g} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask for a clean shutdown; kill after ``timeout_s``. Idempotent."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(self.stop_signal)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _log.warning("%s (pid %d) ignored its stop signal; killing it", self.name, self.pid)
            self.popen.kill()
            self.popen.wait(timeout=timeout_s)


@dataclass
class RunDir:
    """A temporary directory that owns the child processes started in it."""

    path: Path
    children: list[ManagedProcess] = field(default_factory=list)
    # Services are launched from several threads at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, tmp_root: Path) -> RunDir:
        path = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=tmp_root))
        # Services may run as an unprivileged user (Postgres refuses root),
        # which must be able to traverse into its own subdirectory.
        path.chmod(0o755)
        run = cls(path)
        run._write_record()
        return run

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stop_signal: int,
        user: int | None = None,
        group: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` with its output in ``<run>/<name>.log``, and record it.

        The child gets its own session so that a Ctrl-C in the terminal
        reaches only the harness, which then stops services in order. It
        runs in the run directory unless ``cwd`` says otherwise, and its
        environment names the run directory (``ALERTBENCH_RUN_DIR``), so the
        reaper can prove it is ours either way.
        """
        log_path = self.path / f"{name}.log"
        child_env = {**(os.environ if env is None else env), RUN_DIR_ENV: str(self.path)}
        with log_path.open("ab") as log:
            log_start = log.tell()
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                group=group,
                extra_groups=[] if group is not None else None,
                env=child_env,
                cwd=cwd or self.path,
            )
        created = _create_time(popen.pid) or time.time()
        proc = ManagedProcess(name, popen, log_path, stop_signal, created, log_start)
        with self._lock:
            self.children.append(proc)
            self._write_record()
        return proc

    def forget(self, proc: ManagedProcess) -> None:
        """Drop a child that was stopped on purpose from the record."""
        with self._lock:
            if proc in self.children:
                self.children.remove(proc)
                self._write_record()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the children (last started first) and delete the directory."""
        with self._lock:
            children = list(self.children)
        for child in reversed(children):
            try:
                child.stop(timeout_s)
            except Exception:
                _log.exception("could not stop %s (pid %d)", child.name, child.pid)
        self.children.clear()
        shutil.rmtree(self.path, ignore_errors=True)

    def _write_record(self) -> None:
        record = {
            "magic": MAGIC,
            "path": str(self.path),
            "owner": {"pid": os.getpid(), "create_time": _create_time(os.getpid())},
            "children": [
                {
                    "name": c.name,
                    "pid": c.pid,
                    "create_time": c.create_time,
                    "stop_signal": c.stop_signal,
                }
                for c in self.children
            ],
        }
        tmp = self.path / f".{RECORD}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(self.path / RECORD)


def launch_on_free_port(
    run: RunDir,
    name: str,
    argv_for: Callable[[int], Sequence[str]],
    probe_for: Callable[[int], Callable[[], T | None]],
    *,
    what: str,
    stop_signal: int,
    timeout_s: float,
    user: int | None = None,
    group: int | None = None,
    attempts: int = 3,
    env_for: Callable[[int], Mapping[str, str]] | None = None,
    cwd: Path | None = None,
) -> tuple[int, ManagedProcess, T]:
    """Launch a server that cannot bind port 0 itself on a port that was free.

    Returns the port, the process and what its readiness probe answered. A
    server that exits because it lost the race for the port (its log says
    "in use") is launched again on another port, ``attempts`` times at most;
    any other early exit raises :class:`StackStartError` with its log.
    """
    last_log = ""
    for _ in range(attempts):
        port = free_port()
        proc = run.spawn(
            name,
            argv_for(port),
            stop_signal=stop_signal,
            user=user,
            group=group,
            env=env_for(port) if env_for is not None else None,
            cwd=cwd,
        )
        answer = proc.wait_ready(probe_for(port), timeout_s=timeout_s, what=what, port=port)
        if answer is not None:
            return port, proc, answer
        last_log = proc.log_tail()
        proc.stop()
        if "in use" not in last_log.lower():
            break
        _log.info("%s lost the race for port %d; retrying", what, port)
    raise StackStartError(f"{what} did not start:\n{last_log}")


@dataclass(frozen=True)
class Reaped:
    """What :func:`reap_leftovers` removed for one abandoned run directory."""

    path: Path
    owner_pid: int
    killed_pids: tuple[int, ...]


def _is_same_process(pid: int, create_time: float) -> bool:
    actual = _create_time(pid)
    return actual is not None and abs(actual - create_time) <= _CREATE_TIME_SLACK_S


def _mentions(pid: int, path: Path) -> bool:
    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    # Every service we launch is told its run directory on its command line
    # or runs with it as its working directory.
    try:
        cwd = psutil.Process(pid).cwd()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        cwd = ""
    needle = str(path)
    if any(needle in arg for arg in cmdline) or cwd.startswith(needle):
        return True
    try:
        return psutil.Process(pid).environ().get(RUN_DIR_ENV) == needle
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def reap_leftovers(tmp_root: Path, *, timeout_s: float = 10.0) -> list[Reaped]:
    """Stop the processes and delete the run directories of dead owners.

    A run directory under ``tmp_root`` is abandoned when its record is valid
    and its owner process no longer exists (same pid *and* start time). Its
    children are stopped only when pid, start time and command line all
    prove they are the ones this record launched; nothing else is touched.
    Directories of live owners, and anything without a valid record, are left
    alone. Returns what was reaped.
    """
    reaped: list[Reaped] = []
    try:
        candidates = sorted(tmp_root.glob(f"{RUN_PREFIX}*"))
    except OSError:
        return reaped
    for path in candidates:
        try:
            record = json.loads((path / RECORD).read_text())
            if record.get("magic") != MAGIC or record.get("path") != str(path):
                continue
            owner_pid = int(record["owner"]["pid"])
            owner_time = float(record["owner"]["create_time"])
            children = [
                (str(c["name"]), int(c["pid"]), float(c["create_time"]), int(c["stop_signal"]))
                for c in record["children"]
            ]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _is_same_process(owner_pid, owner_time):
            continue  # its owner is alive: not a leftover
        killed: list[int] = []
        for name, pid, created, stop_signal in reversed(children):
            if not (_is_same_process(pid, created) and _mentions(pid, path)):
                continue
            _log.warning("reaping leftover %s (pid %d) of dead owner %d", name, pid, owner_pid)
            _stop_pid(pid, stop_signal, timeout_s)
            killed.append(pid)
        shutil.rmtree(path, ignore_errors=True)
        reaped.append(Reaped(path, owner_pid, tuple(killed)))
    return reaped


def _stop_pid(pid: int, stop_signal: int, timeout_s: float) -> None:
    try:
        proc = psutil.Process(pid)
        proc.send_signal(stop_signal)
        proc.wait(timeout=timeout_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass
