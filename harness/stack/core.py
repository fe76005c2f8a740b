"""Start and stop a stack: Postgres and Redis from the chosen providers.

:func:`start_stack` picks a provider per service (external, then docker, then
embedded, unless one is forced), starts what needs starting, prepares
Postgres (``pg_stat_statements`` created in ``template1`` and ``postgres`` so
every database has it) and returns a :class:`Stack`. Closing the stack (also
through ``with``, ``atexit``, or a signal turned into an exception) stops
everything it started and deletes its run directory. Before starting, it
reaps what earlier, killed owners left behind (see
:func:`harness.stack._process.reap_leftovers`).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import logging
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from harness.errors import StackStartError, StackUnavailable
from harness.stack import _sql
from harness.stack._net import LOOPBACK, redis_ping
from harness.stack._process import RunDir, reap_leftovers
from harness.stack.app import AppProcesses, AppSpec, launch_app
from harness.stack.config import SERVICES, ProviderName, ServiceName, StackConfig
from harness.stack.docker import DockerServices, docker_unavailable_reason
from harness.stack.embedded import EmbeddedPostgres, EmbeddedRedis, embedded_unavailable_reason
from harness.stack.endpoints import PostgresEndpoint, RedisEndpoint
from harness.stack.proxies import (
    ToxiproxyServer,
    create_proxies,
    delete_proxies,
    start_toxiproxy,
)

__all__ = ["MAX_LOG_BYTES", "Stack", "choose_providers", "start_stack"]

#: An app process's log is kept up to this size: its end, where a crash is.
MAX_LOG_BYTES = 4 * 1024 * 1024


def _read_from(path: Path, start: int, limit: int = MAX_LOG_BYTES) -> bytes:
    """The bytes of ``path`` from ``start``: the last ``limit`` of them, after
    a line that says how much was left out."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            begin = max(start, size - limit)
            log.seek(begin)
            data = log.read(limit)
    except OSError as exc:
        return f"[alertbench: the log could not be read: {exc}]\n".encode()
    if begin > start:
        dropped = begin - start
        data = f"[alertbench: the first {dropped} bytes are left out]\n".encode() + data
    return data


_log = logging.getLogger(__name__)

Probe = Callable[[], StackUnavailable | None]


def choose_providers(
    config: StackConfig,
    *,
    docker_probe: Probe = docker_unavailable_reason,
    embedded_probe: Probe = embedded_unavailable_reason,
) -> dict[ServiceName, ProviderName]:
    """Which provider runs each service.

    A forced provider is used for every service, and raises
    :class:`StackUnavailable` (saying what is missing) if it cannot run.
    Otherwise each service takes the first that fits: ``external`` where its
    URL is configured, ``docker`` where an engine answers, else ``embedded``.
    The probes are parameters so the choice can be tested without Docker.
    """
    if config.provider is not None:
        probe = {"docker": docker_probe, "embedded": embedded_probe}.get(config.provider)
        if probe is not None and (reason := probe()) is not None:
            raise reason
        return dict.fromkeys(SERVICES, config.provider)
    external = {"postgres": config.pg_dsn is not None, "redis": config.redis_url is not None}
    chosen: dict[ServiceName, ProviderName] = {s: "external" for s in SERVICES if external[s]}
    remaining = [s for s in SERVICES if s not in chosen]
    if remaining:
        docker_reason = docker_probe()
        if docker_reason is None:
            fallback: ProviderName = "docker"
        else:
            _log.debug("not using docker: %s", docker_reason)
            if (reason := embedded_probe()) is not None:
                raise reason
            fallback = "embedded"
        chosen.update(dict.fromkeys(remaining, fallback))
    return {s: chosen[s] for s in SERVICES}


@dataclass
class Stack:
    """A running stack. Use as a context manager, or call :meth:`close`.

    :attr:`postgres` and :attr:`redis` are the addresses everyone uses: they
    go through the Toxiproxy proxies of the same name, so faults apply to
    them. The ``*_direct`` addresses bypass the proxies; the harness uses them
    for set-up, teardown and final reads, which faults must not disturb.

    A stack started with ``StackConfig(proxy=False)`` (``--no-proxy``) has no
    Toxiproxy (:attr:`toxiproxy` is None, :attr:`proxy_bypassed` is True):
    every address is the direct one and no fault can be injected on a hop.
    """

    providers: dict[ServiceName, ProviderName]
    #: Through the ``postgres`` proxy.
    postgres: PostgresEndpoint
    #: Through the ``redis`` proxy.
    redis: RedisEndpoint
    postgres_direct: PostgresEndpoint
    redis_direct: RedisEndpoint
    #: None when the proxies are bypassed (``--no-proxy``).
    toxiproxy: ToxiproxyServer | None
    #: Logical proxy name (``postgres``, ``redis``, ``app``) -> the port it
    #: listens on (127.0.0.1). Fault packages take
    #: ``stack.toxiproxy.proxy_name(logical)``.
    proxies: dict[str, int]
    #: Seconds each part took to start (``postgres``, ``redis``, ``total``).
    startup_s: dict[str, float]
    run_dir: RunDir | None = None
    docker: DockerServices | None = None
    #: The reference pipeline, once :meth:`start_app` ran.
    app: AppProcesses | None = None
    #: URL of each app process through its proxy (``app``, ``app1``, ...).
    app_urls: list[str] = field(default_factory=list)
    tmp_root: Path | None = None
    _closed: bool = field(default=False, repr=False)
    #: Each app process's log and where its output starts in it.
    _log_marks: dict[str, tuple[Path, int]] = field(default_factory=dict, repr=False)
    #: What the last stopped app wrote, per process (see :meth:`take_app_logs`).
    _stopped_logs: dict[str, bytes] = field(default_factory=dict, repr=False)

    def start_app(self, spec: AppSpec | None = None, *, startup_timeout_s: float = 60.0) -> str:
        """Run the reference pipeline on this stack; return its (proxied) URL.

        The app's processes are children of the stack and stop with it.
        """
        if self.app is not None:
            raise StackStartError("the app is already running on this stack")
        spec = spec or AppSpec()
        if self.run_dir is None:
            self.run_dir = RunDir.create(self.tmp_root or Path(tempfile.gettempdir()))
        rows = _sql.fetch(
            self.postgres_direct.dsn, "SELECT 1 FROM pg_database WHERE datname = $1", spec.database
        )
        if not rows:
            _sql.execute(self.postgres_direct.dsn, [f'CREATE DATABASE "{spec.database}"'])
        self.app = launch_app(
            self.run_dir,
            spec,
            pg_dsn=self.postgres.dsn_for(spec.database),
            redis_url=self.redis.url,
            startup_timeout_s=startup_timeout_s,
        )
        self._log_marks = {p.name: (p.log_path, p.log_start) for p in self.app.everyone}
        self._stopped_logs = {}
        if self.toxiproxy is None:
            self.app_urls.extend(self.app.direct_urls)
            return self.app_urls[0]
        for index, direct in enumerate(self.app.direct_urls):
            name = "app" if index == 0 else f"app{index}"
            port = self.add_proxy(name, LOOPBACK, int(direct.rsplit(":", 1)[1]))
            self.app_urls.append(f"http://{LOOPBACK}:{port}")
        return self.app_urls[0]

    def attach_app(self, base_url: str) -> str:
        """Put the ``app`` proxy in front of a pipeline that is already running
        (a ``url`` target); return the proxied URL. :meth:`stop_app` detaches."""
        if self.app is not None or self.app_urls:
            raise StackStartError("an app is already running on this stack")
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise StackStartError(f"can only proxy an http:// URL, got {base_url!r}")
        if self.toxiproxy is None:
            self.app_urls.append(base_url.rstrip("/"))
            return self.app_urls[0]
        port = self.add_proxy("app", parsed.hostname, parsed.port or 80)
        self.app_urls.append(f"http://{LOOPBACK}:{port}")
        return self.app_urls[0]

    def stop_app(self, *, timeout_s: float = 15.0) -> None:
        """Stop the app's processes and remove their proxies (the database stays)."""
        if self.app is None:
            if self.app_urls:  # attached, not ours to stop
                if self.toxiproxy is not None:
                    delete_proxies(self.toxiproxy, ["app"])
                self.proxies.pop("app", None)
                self.app_urls.clear()
            return
        for proc in reversed(self.app.everyone):
            proc.stop(timeout_s)
            if self.run_dir is not None:
                self.run_dir.forget(proc)
        self._stopped_logs = {
            name: _read_from(path, start) for name, (path, start) in self._log_marks.items()
        }
        self._log_marks = {}
        names = ["app" if i == 0 else f"app{i}" for i in range(len(self.app.processes))]
        if self.toxiproxy is not None:
            delete_proxies(self.toxiproxy, names)
        for name in names:
            self.proxies.pop(name, None)
        self.app = None
        self.app_urls.clear()

    def kill_process(self, name: str) -> None:
        """SIGKILL one of the app's processes (``app``, ``app1``..., ``worker``...)."""
        if self.app is None:
            raise StackStartError("the app is not running: call start_app() first")
        self.app.kill(name)

    def restart_process(self, name: str) -> None:
        """Start a killed app process again, as it was (same port, same
        proxy in front of it); return once it is ready."""
        if self.app is None:
            raise StackStartError("the app is not running: call start_app() first")
        self.app.restart(name)

    def take_app_logs(self) -> dict[str, bytes]:
        """What each process of the last stopped app wrote (stdout and stderr),
        from its start to its stop, restarts included; at most the last
        :data:`MAX_LOG_BYTES` of each. Given once: the next call returns {}
        until another app stops. (The stack's own files go with the stack.)"""
        logs, self._stopped_logs = self._stopped_logs, {}
        return logs

    @property
    def app_url(self) -> str:
        """The first app process, through the ``app`` proxy."""
        if not self.app_urls:
            raise StackStartError("the app is not running: call start_app() first")
        return self.app_urls[0]

    @property
    def proxy_bypassed(self) -> bool:
        """True when the stack runs without Toxiproxy (``--no-proxy``)."""
        return self.toxiproxy is None

    def add_proxy(self, name: str, host: str, port: int) -> int:
        """Put a named proxy in front of ``host:port``; return its listen port."""
        if self.toxiproxy is None:
            raise StackStartError(
                f"cannot put a proxy named {name!r} in front of {host}:{port}: this stack"
                " bypasses Toxiproxy (--no-proxy)"
            )
        ports = create_proxies(self.toxiproxy, {name: (host, port)})
        self.proxies[name] = ports[name]
        return ports[name]

    def close(self) -> None:
        """Stop everything this stack started and remove its files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self.toxiproxy is not None and self.toxiproxy.kind == "external":
            try:
                delete_proxies(self.toxiproxy, list(self.proxies))
            except Exception:
                _log.warning("could not remove proxies from %s", self.toxiproxy.url, exc_info=True)
        if self.docker is not None:
            self.docker.close()
        if self.run_dir is not None:
            self.run_dir.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def check(self) -> dict[str, Any]:
        """Run a real query and a real Redis command; return what they said."""
        rows = _sql.fetch(
            self.postgres.dsn,  # through the proxy: checks the whole path
            "SELECT version() AS version, "
            "(SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss",
        )
        if not rows or rows[0]["pgss"] != 1:
            raise StackUnavailable(
                "postgres", "pg_stat_statements is not installed", "Preload and create it"
            )
        if not redis_ping(self.redis.host, self.redis.port, password=self.redis.password):
            raise StackUnavailable("redis", f"no PONG from {self.redis.url}", "Is it running?")
        return {"postgres": rows[0]["version"], "redis": "PONG"}

    def flush_redis(self) -> None:
        """Empty the stack's Redis (directly, not through the proxy)."""
        client = redis.Redis.from_url(self.redis_direct.url, socket_timeout=10.0)
        try:
            client.flushall()
        finally:
            client.close()

    def local_processes(self) -> dict[str, int]:
        """Process id of each server this stack started on this machine, by name
        (``postgres``, ``redis``, ``toxiproxy``, ``app``, ``app1``...); Docker
        and external services are not in it."""
        if self.run_dir is None:
            return {}
        return {proc.name: proc.pid for proc in self.run_dir.children if proc.alive()}

    def unmeasured_roles(self) -> dict[str, str]:
        """Servers of this stack whose CPU cannot be read here, with the reason
        (the CPU table lists them as unmeasured instead of dropping them)."""
        reasons: dict[str, str] = {}
        for service, provider in self.providers.items():
            if provider == "docker":
                reasons[service] = "runs in a Docker container, whose CPU is not read"
            elif provider == "external":
                reasons[service] = "an external server, not a process of this machine's stack"
        if self.toxiproxy is not None and self.toxiproxy.kind == "external":
            reasons["toxiproxy"] = (
                f"an external Toxiproxy server ({self.toxiproxy.url}, TOXIPROXY_URL),"
                " not a process of this stack"
            )
        if self.app is None and self.app_urls:
            reasons["app"] = (
                "an already running deployment (url target), not a process of this stack"
            )
        return reasons

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: providers, addresses and startup times."""
        return {
            "providers": dict(self.providers),
            "postgres": {"dsn": self.postgres.dsn, "direct_dsn": self.postgres_direct.dsn},
            "redis": {"url": self.redis.url, "direct_url": self.redis_direct.url},
            "proxy_bypassed": self.toxiproxy is None,
            "toxiproxy": (
                {
                    "url": self.toxiproxy.url,
                    "kind": self.toxiproxy.kind,
                    "version": self.toxiproxy.version,
                    "proxies": {
                        name: {"name": self.toxiproxy.proxy_name(name), "port": port}
                        for name, port in self.proxies.items()
                    },
                }
                if self.toxiproxy is not None
                else None
            ),
            "startup_s": {k: round(v, 3) for k, v in self.startup_s.items()},
            "run_dir": str(self.run_dir.path) if self.run_dir else None,
            "app": (
                {
                    "urls": list(self.app_urls),
                    "direct_urls": list(self.app.direct_urls),
                    "flaws": sorted(self.app.spec.flaws),
                    "database": self.app.spec.database,
                }
                if self.app is not None
                else None
            ),
        }

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _prepare_postgres(endpoint: PostgresEndpoint) -> None:
    # Created in template1 so that every database made later has it too.
    statement = "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
    _sql.execute(endpoint.dsn_for("template1"), [statement])  # direct, not proxied
    _sql.execute(endpoint.dsn, [statement])


def start_stack(config: StackConfig | None = None) -> Stack:
    """Start (or attach to) Postgres and Redis as ``config`` says.

    Raises :class:`~harness.errors.StackUnavailable` when a forced provider
    cannot run and :class:`~harness.errors.StackStartError` when a service
    does not become ready; in both cases nothing is left running.
    """
    config = config or StackConfig.from_env()
    providers = choose_providers(config)
    started = time.perf_counter()
    run_dir: RunDir | None = None
    docker: DockerServices | None = None
    needs_run_dir = "embedded" in providers.values() or (
        config.proxy and config.toxiproxy_url is None
    )
    if needs_run_dir:
        for reaped in reap_leftovers(config.tmp_root):
            _log.warning(
                "removed leftovers of dead owner %d: %s (stopped pids %s)",
                reaped.owner_pid,
                reaped.path,
                list(reaped.killed_pids) or "none",
            )
        run_dir = RunDir.create(config.tmp_root)
    if "docker" in providers.values():
        docker = DockerServices()
    timings: dict[str, float] = {}

    def timed(name: str, start: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = start()
        timings[name] = time.perf_counter() - t0
        return result

    def start_postgres() -> PostgresEndpoint:
        match providers["postgres"]:
            case "external":
                assert config.pg_dsn is not None
                return PostgresEndpoint.from_dsn(config.pg_dsn)
            case "docker":
                assert docker is not None
                return docker.start_postgres()
            case _:
                assert run_dir is not None
                endpoint, _proc = EmbeddedPostgres(run_dir, config.startup_timeout_s).start()
                return endpoint

    def start_redis() -> RedisEndpoint:
        match providers["redis"]:
            case "external":
                assert config.redis_url is not None
                return RedisEndpoint.from_url(config.redis_url)
            case "docker":
                assert docker is not None
                return docker.start_redis()
            case _:
                assert run_dir is not None
                endpoint, _proc = EmbeddedRedis(run_dir, config.startup_timeout_s).start()
                return endpoint

    def start_proxy_server() -> ToxiproxyServer | None:
        if not config.proxy:
            _log.info("Toxiproxy bypassed (--no-proxy): clients connect directly")
            return None
        return start_toxiproxy(
            external_url=config.toxiproxy_url,
            run_dir=run_dir,
            seed=config.seed,
            startup_timeout_s=config.startup_timeout_s,
        )

    stack: Stack | None = None
    try:
        # Postgres (initdb dominates), Redis and Toxiproxy start side by side.
        with concurrent.futures.ThreadPoolExecutor(
            3, thread_name_prefix="alertbench-stack"
        ) as pool:
            pg_future = pool.submit(timed, "postgres", start_postgres)
            redis_future = pool.submit(timed, "redis", start_redis)
            proxy_future = pool.submit(timed, "toxiproxy", start_proxy_server)
            postgres: PostgresEndpoint = pg_future.result()
            redis: RedisEndpoint = redis_future.result()
            toxiproxy: ToxiproxyServer | None = proxy_future.result()
        timed("prepare", lambda: _prepare_postgres(postgres))
        ports: dict[str, int] = {}
        proxied_postgres, proxied_redis = postgres, redis
        if toxiproxy is not None:
            server = toxiproxy
            ports = timed(
                "proxies",
                lambda: create_proxies(
                    server,
                    {"postgres": (postgres.host, postgres.port), "redis": (redis.host, redis.port)},
                ),
            )
            proxied_postgres = dataclasses.replace(postgres, host=LOOPBACK, port=ports["postgres"])
            proxied_redis = dataclasses.replace(redis, host=LOOPBACK, port=ports["redis"])
        timings["total"] = time.perf_counter() - started
        stack = Stack(
            providers,
            postgres=proxied_postgres,
            redis=proxied_redis,
            postgres_direct=postgres,
            redis_direct=redis,
            toxiproxy=toxiproxy,
            proxies=ports,
            startup_s=timings,
            run_dir=run_dir,
            docker=docker,
            tmp_root=config.tmp_root,
        )
        atexit.register(stack.close)
        return stack
    finally:
        if stack is None:
            if docker is not None:
                docker.close()
            if run_dir is not None:
                run_dir.close()
