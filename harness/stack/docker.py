"""The docker provider: Postgres and Redis in containers, via testcontainers.

Used when a Docker engine answers (or when forced with ``--stack docker``).
testcontainers' own reaper (Ryuk) removes containers whose owner died.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import StackUnavailable
from harness.stack.endpoints import PostgresEndpoint, RedisEndpoint

__all__ = ["DockerServices", "docker_unavailable_reason"]

_log = logging.getLogger(__name__)

POSTGRES_IMAGE = "postgres:17-alpine"
REDIS_IMAGE = "redis:7-alpine"
_INSTALL = "Install the extra with: pip install 'alertbench[docker]'"


def docker_unavailable_reason(*, timeout_s: float = 2.0) -> StackUnavailable | None:
    """Why containers cannot be started here, or ``None`` if they can."""
    if (
        importlib.util.find_spec("testcontainers") is None
        or importlib.util.find_spec("docker") is None
    ):
        return StackUnavailable("docker", "the testcontainers package is not installed", _INSTALL)
    host = os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        # Checked first: asking the SDK about a missing socket leaks one.
        return StackUnavailable(
            "docker",
            f"no Docker engine: the socket {host.removeprefix('unix://')} does not exist",
            "Start a Docker engine (or set DOCKER_HOST), or use --stack embedded",
        )
    import docker

    try:
        client = docker.from_env(timeout=int(max(1, timeout_s)))
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the docker SDK raises many unrelated types here
        return StackUnavailable(
            "docker",
            f"no Docker engine answers ({type(exc).__name__}: {exc})",
            "Start a Docker engine (or set DOCKER_HOST), or use --stack embedded",
        )
    return None


@dataclass
class DockerServices:
    """Containers started for one stack; :meth:`close` removes them."""

    containers: list[Any] = field(default_factory=list)

    def start_postgres(self) -> PostgresEndpoint:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(
            POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres"
        ).with_command("postgres -c shared_preload_libraries=pg_stat_statements -c fsync=off")
        container.start()
        self.containers.append(container)
        return PostgresEndpoint(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(5432)),
            user="postgres",
            password="postgres",
        )

    def start_redis(self) -> RedisEndpoint:
        from testcontainers.redis import RedisContainer

        container = RedisContainer(REDIS_IMAGE)
        container.start()
        self.containers.append(container)
        return RedisEndpoint(
            host=container.get_container_host_ip(), port=int(container.get_exposed_port(6379))
        )

    def close(self) -> None:
        for container in reversed(self.containers):
            with contextlib.suppress(Exception):
                container.stop()
        self.containers.clear()
