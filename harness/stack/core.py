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
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from harness.errors import StackUnavailable
from harness.stack import _sql
from harness.stack._net import redis_ping
from harness.stack._process import RunDir, reap_leftovers
from harness.stack.config import SERVICES, ProviderName, ServiceName, StackConfig
from harness.stack.docker import DockerServices, docker_unavailable_reason
from harness.stack.embedded import EmbeddedPostgres, EmbeddedRedis, embedded_unavailable_reason
from harness.stack.endpoints import PostgresEndpoint, RedisEndpoint

__all__ = ["Stack", "choose_providers", "start_stack"]

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
    """A running stack. Use as a context manager, or call :meth:`close`."""

    providers: dict[ServiceName, ProviderName]
    postgres: PostgresEndpoint
    redis: RedisEndpoint
    #: Seconds each part took to start (``postgres``, ``redis``, ``total``).
    startup_s: dict[str, float]
    run_dir: RunDir | None = None
    docker: DockerServices | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Stop everything this stack started and remove its files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
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
            self.postgres.dsn,
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

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: providers, addresses and startup times."""
        return {
            "providers": dict(self.providers),
            "postgres": {"dsn": self.postgres.dsn},
            "redis": {"url": self.redis.url},
            "startup_s": {k: round(v, 3) for k, v in self.startup_s.items()},
            "run_dir": str(self.run_dir.path) if self.run_dir else None,
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
    _sql.execute(endpoint.dsn_for("template1"), [statement])
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
    if "embedded" in providers.values():
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

    stack: Stack | None = None
    try:
        # Postgres (initdb dominates) and Redis start side by side.
        with concurrent.futures.ThreadPoolExecutor(
            2, thread_name_prefix="alertbench-stack"
        ) as pool:
            pg_future = pool.submit(timed, "postgres", start_postgres)
            redis_future = pool.submit(timed, "redis", start_redis)
            postgres: PostgresEndpoint = pg_future.result()
            redis: RedisEndpoint = redis_future.result()
        timed("prepare", lambda: _prepare_postgres(postgres))
        timings["total"] = time.perf_counter() - started
        stack = Stack(providers, postgres, redis, timings, run_dir, docker)
        atexit.register(stack.close)
        return stack
    finally:
        if stack is None:
            if docker is not None:
                docker.close()
            if run_dir is not None:
                run_dir.close()
