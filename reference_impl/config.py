"""AppConfig: everything the reference pipeline needs, validated when built."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from urllib.parse import urlsplit

from reference_impl import loop as event_loop
from reference_impl.flaws import Flaw, parse_flaws

__all__ = ["DEV_TOKEN_SECRET", "AppConfig", "ConfigError"]

#: Secret used when none is configured. Fine for a benchmark on 127.0.0.1,
#: never for anything reachable from elsewhere.
DEV_TOKEN_SECRET = "alertbench-dev-secret-not-for-production"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AppConfig:
    """Configuration of one reference pipeline process (API and/or worker)."""

    pg_dsn: str
    """Postgres DSN, ``postgresql://user@host:port/db``."""
    redis_url: str
    """Redis URL, ``redis://host:port/db``; used by the cache and the queue."""
    host: str = "127.0.0.1"
    """Interface the HTTP server binds to."""
    port: int = 8000
    """TCP port of the HTTP server (0 picks a free one)."""
    flaws: frozenset[Flaw] = frozenset()
    """Named flaws switched on (see reference_impl.flaws)."""
    token_secret: str = DEV_TOKEN_SECRET
    """HMAC secret of the bearer tokens (HS256), at least 32 characters."""
    token_ttl_s: int = 3600
    """Lifetime of tokens issued by reference_impl.auth.issue_token."""
    cache_ttl_s: int = 60
    """TTL of a cached per-user alert list."""
    redis_timeout_s: float = 0.5
    """Socket timeout of cache calls; past it the API answers from Postgres."""
    pg_pool_min_size: int = 1
    pg_pool_max_size: int = 10
    pg_command_timeout_s: float = 10.0
    """Client-side timeout of one statement."""
    queue_name: str = "alertbench"
    queue_attempts: int = 3
    """Attempts of a queued completion before it lands in the dead-letter state."""
    queue_retry_base_delay_s: float = 2.0
    """First retry delay; doubles per attempt (exponential backoff with jitter)."""
    queue_job_timeout_s: int = 10
    queue_heartbeat_s: int = 5
    """A job not touched for this long is stuck and swept (e.g. its worker died)."""
    queue_sweep_interval_s: float = 5.0
    """How often the worker looks for stuck jobs."""
    queue_schedule_interval_s: float = 0.05
    """How often the worker moves due retries onto the queue."""
    queue_job_ttl_s: int = 7 * 24 * 3600
    """How long finished jobs (and dead letters) stay listable."""
    worker_concurrency: int = 10
    run_worker: bool = True
    """Run a queue worker inside the API process."""
    migrate_on_start: bool = True
    """Apply the schema (idempotent) when the app starts."""
    run_relay: bool = True
    """Run the LISTEN/NOTIFY relay that emits committed alerts over Socket.IO.
    With several server processes, exactly one should run it (the others
    receive its emits through the Redis manager)."""
    socketio_redis: bool = False
    """Route Socket.IO emits through python-socketio's Redis manager, so that
    several server processes deliver to each other's clients."""
    gc_tuning: bool = True
    loop: str = "auto"
    """Event loop: ``auto`` (uvloop if installed), ``uvloop`` or ``asyncio``."""
    """Raise the garbage collector's thresholds when serving (see serve.tune_gc)."""
    inject_rollback_rate: float = 0.0
    """Fault injection: the share of completions failed on purpose just before
    their commit (answered 503), for the ``rollback`` scenario. 0 in production."""
    inject_seed: int = 0
    """Seed of the injected failures."""
    relay_pg_dsn: str | None = None
    """DSN of the relay's LISTEN connection (default: ``pg_dsn``); lets a
    test or a scenario cut the relay's connection alone."""
    relay_replay_margin_s: float = 30.0
    """After a lost LISTEN connection, replay alerts created this long before
    the connection was last known alive (covers commit-after-start)."""

    def __post_init__(self) -> None:
        _check_url("pg_dsn", self.pg_dsn, ("postgres", "postgresql"))
        _check_url("redis_url", self.redis_url, ("redis", "rediss", "unix"))
        if not 0.0 <= self.inject_rollback_rate <= 1.0:
            raise ConfigError(
                f"inject_rollback_rate: must be in [0, 1], got {self.inject_rollback_rate!r}"
            )
        if self.relay_pg_dsn is not None:
            _check_url("relay_pg_dsn", self.relay_pg_dsn, ("postgres", "postgresql"))
        if not self.host:
            raise ConfigError("host: must not be empty")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: must be in 0..65535, got {self.port}")
        object.__setattr__(self, "flaws", parse_flaws(self.flaws))
        try:
            event_loop.check(self.loop)
        except event_loop.LoopError as exc:
            raise ConfigError(str(exc)) from None
        if len(self.token_secret) < 32:
            raise ConfigError("token_secret: must be at least 32 characters (HS256 key)")
        for name in (
            "token_ttl_s",
            "cache_ttl_s",
            "pg_pool_min_size",
            "pg_pool_max_size",
            "queue_attempts",
            "queue_job_timeout_s",
            "queue_heartbeat_s",
            "queue_job_ttl_s",
            "worker_concurrency",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be a positive integer, got {value!r}")
        for name in (
            "redis_timeout_s",
            "pg_command_timeout_s",
            "queue_sweep_interval_s",
            "queue_schedule_interval_s",
            "relay_replay_margin_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{name}: must be a positive number, got {value!r}")
        if self.queue_retry_base_delay_s < 0:
            raise ConfigError(
                f"queue_retry_base_delay_s: must be >= 0, got {self.queue_retry_base_delay_s!r}"
            )
        if self.pg_pool_min_size > self.pg_pool_max_size:
            raise ConfigError(
                f"pg_pool_min_size: {self.pg_pool_min_size} exceeds "
                f"pg_pool_max_size {self.pg_pool_max_size}"
            )
        if not self.queue_name or ":" in self.queue_name:
            raise ConfigError(f"queue_name: must be non-empty without ':', got {self.queue_name!r}")

    def has(self, flaw: Flaw) -> bool:
        """True when ``flaw`` is switched on."""
        return flaw in self.flaws

    def with_flaws(self, flaws: Iterable[str | Flaw]) -> AppConfig:
        """A copy with exactly these flaws."""
        return dataclasses.replace(self, flaws=parse_flaws(flaws))


def _check_url(field: str, value: str, schemes: tuple[str, ...]) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field}: must be a non-empty URL")
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise ConfigError(
            f"{field}: scheme must be one of {', '.join(schemes)}, got {value.split('://')[0]!r}"
        )
