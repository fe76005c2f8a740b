"""Stack configuration: which provider runs each service, validated when read.

Settings come from keyword arguments (the CLI's flags) first, then from the
environment:

``ALERTBENCH_STACK``
    Force one provider for every service: ``external``, ``docker`` or
    ``embedded``. Unset means "choose": external where a URL is given, then
    Docker where an engine answers, then embedded.
``ALERTBENCH_PG_DSN``
    ``postgresql://user:password@host:port/dbname`` of an existing server.
``ALERTBENCH_REDIS_URL``
    ``redis://host:port/db`` of an existing server.
``ALERTBENCH_STARTUP_TIMEOUT_S``
    How long a launched service may take to become ready (default 30).
``ALERTBENCH_TMPDIR``
    Where the embedded provider puts its run directories (default: the
    system temporary directory).
``TOXIPROXY_URL``
    An existing Toxiproxy server to put the proxies on (default: run
    ``toxiproxy-server`` from PATH, else alertbench's embedded one).
``ALERTBENCH_SEED``
    Seed of the fault proxy's random choices (toxicity, jitter).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from harness.errors import ConfigError

__all__ = ["PROVIDERS", "SERVICES", "ProviderName", "ServiceName", "StackConfig"]

ProviderName = Literal["external", "docker", "embedded"]
ServiceName = Literal["postgres", "redis"]

#: Providers in the order the automatic choice tries them.
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)

ENV_STACK = "ALERTBENCH_STACK"
ENV_PG_DSN = "ALERTBENCH_PG_DSN"
ENV_REDIS_URL = "ALERTBENCH_REDIS_URL"
ENV_STARTUP_TIMEOUT = "ALERTBENCH_STARTUP_TIMEOUT_S"
ENV_TMPDIR = "ALERTBENCH_TMPDIR"
ENV_TOXIPROXY_URL = "TOXIPROXY_URL"
ENV_SEED = "ALERTBENCH_SEED"


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """What to start, validated on construction."""

    #: Force this provider for every service; ``None`` chooses per service.
    provider: ProviderName | None = None
    #: DSN of an external Postgres (used by the ``external`` provider).
    pg_dsn: str | None = None
    #: URL of an external Redis (used by the ``external`` provider).
    redis_url: str | None = None
    #: How long a launched service may take to become ready, in seconds.
    startup_timeout_s: float = 30.0
    #: Parent of the embedded provider's run directories.
    tmp_root: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    #: API URL of an existing Toxiproxy server (``None``: launch one).
    toxiproxy_url: str | None = None
    #: Seed of the fault proxy's random choices (``None``: drawn and logged).
    seed: int | None = None
    #: Put Toxiproxy in front of every service (False: ``--no-proxy``, every
    #: client connects directly and no fault can be injected on a hop).
    proxy: bool = True

    def __post_init__(self) -> None:
        if self.provider is not None and self.provider not in PROVIDERS:
            raise ConfigError(
                "provider",
                f"{self.provider!r} is not a provider; choose one of {', '.join(PROVIDERS)}",
            )
        if self.pg_dsn is not None:
            _check_url("pg_dsn", self.pg_dsn, ("postgres", "postgresql"))
        if self.redis_url is not None:
            _check_url("redis_url", self.redis_url, ("redis", "rediss"))
        if self.toxiproxy_url is not None:
            _check_url("toxiproxy_url", self.toxiproxy_url, ("http",))
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ConfigError("seed", f"must be an integer in [0, 2**63), got {self.seed!r}")
        if not (math.isfinite(self.startup_timeout_s) and self.startup_timeout_s > 0):
            raise ConfigError(
                "startup_timeout_s",
                f"must be a positive number of seconds, got {self.startup_timeout_s!r}",
            )
        if self.provider == "external":
            missing = [
                name
                for name, value in ((ENV_PG_DSN, self.pg_dsn), (ENV_REDIS_URL, self.redis_url))
                if value is None
            ]
            if missing:
                raise ConfigError(
                    "provider",
                    f"'external' needs {' and '.join(missing)} set to the server(s) to use",
                )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        provider: str | None = None,
        pg_dsn: str | None = None,
        redis_url: str | None = None,
        startup_timeout_s: float | None = None,
        tmp_root: Path | None = None,
        seed: int | None = None,
        proxy: bool = True,
    ) -> StackConfig:
        """Build a config from keyword arguments, falling back to ``env``.

        Keyword arguments win (they are the CLI's flags); empty environment
        values count as unset. Errors name the environment variable.
        """
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        chosen = provider if provider is not None else get(ENV_STACK)
        if chosen is not None and chosen not in PROVIDERS:
            setting = "--stack" if provider is not None else ENV_STACK
            raise ConfigError(
                setting, f"{chosen!r} is not a provider; choose one of {', '.join(PROVIDERS)}"
            )
        timeout = startup_timeout_s
        if timeout is None and (raw := get(ENV_STARTUP_TIMEOUT)) is not None:
            try:
                timeout = float(raw)
            except ValueError:
                raise ConfigError(
                    ENV_STARTUP_TIMEOUT, f"must be a number of seconds, got {raw!r}"
                ) from None
        root = tmp_root
        if root is None and (raw := get(ENV_TMPDIR)) is not None:
            root = Path(raw)
            if not root.is_dir():
                raise ConfigError(ENV_TMPDIR, f"{raw!r} is not an existing directory")
        if seed is None and (raw := get(ENV_SEED)) is not None:
            try:
                seed = int(raw)
            except ValueError:
                raise ConfigError(ENV_SEED, f"must be an integer, got {raw!r}") from None
        try:
            return cls(
                provider=chosen,  # checked above
                pg_dsn=pg_dsn if pg_dsn is not None else get(ENV_PG_DSN),
                redis_url=redis_url if redis_url is not None else get(ENV_REDIS_URL),
                startup_timeout_s=30.0 if timeout is None else timeout,
                tmp_root=Path(tempfile.gettempdir()) if root is None else root,
                toxiproxy_url=get(ENV_TOXIPROXY_URL) if proxy else None,
                seed=seed,
                proxy=proxy,
            )
        except ConfigError as exc:
            # Name the environment variable the user actually set.
            setting = {
                "pg_dsn": ENV_PG_DSN,
                "redis_url": ENV_REDIS_URL,
                "startup_timeout_s": ENV_STARTUP_TIMEOUT,
                "toxiproxy_url": ENV_TOXIPROXY_URL,
                "seed": ENV_SEED,
                "provider": "--stack" if provider is not None else ENV_STACK,
            }.get(exc.setting, exc.setting)
            raise ConfigError(setting, exc.problem) from None


def _check_url(setting: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(setting, f"{value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            setting,
            f"scheme must be {' or '.join(s + '://' for s in schemes)}, got {value!r}",
        )
    if not parts.hostname:
        raise ConfigError(setting, f"{value!r} names no host")
    if port == 0:
        raise ConfigError(setting, f"{value!r} has port 0")
