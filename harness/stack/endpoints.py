"""Where the services of a running stack can be reached."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

__all__ = ["PostgresEndpoint", "RedisEndpoint"]


@dataclass(frozen=True, kw_only=True)
class PostgresEndpoint:
    """A Postgres server and the database the harness uses on it."""

    host: str
    port: int
    user: str
    password: str = ""
    database: str = "postgres"

    @property
    def dsn(self) -> str:
        """``postgresql://`` DSN of :attr:`database`."""
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        """DSN of another database on the same server, same credentials."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    @classmethod
    def from_dsn(cls, dsn: str) -> PostgresEndpoint:
        """Parse a ``postgresql://`` DSN (already validated by the config)."""
        parts = urlsplit(dsn)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or "postgres",
        )


@dataclass(frozen=True, kw_only=True)
class RedisEndpoint:
    """A Redis server."""

    host: str
    port: int
    db: int = 0
    password: str = ""

    @property
    def url(self) -> str:
        """``redis://`` URL of the server and :attr:`db`."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"

    @classmethod
    def from_url(cls, url: str) -> RedisEndpoint:
        """Parse a ``redis://`` URL (already validated by the config)."""
        parts = urlsplit(url)
        path = parts.path.lstrip("/")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(path) if path.isdigit() else 0,
            password=unquote(parts.password or ""),
        )
