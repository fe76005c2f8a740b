"""What is under test: a target, read from a target file (TOML).

A target is judged only through the contract (``docs/contract.md``); its file
says how to reach it and what it offers:

- ``kind = "reference"``: alertbench's own pipeline (``python -m
  reference_impl``), flaws and all; ``--target reference`` and the default.
- ``kind = "command"``: the harness starts ``[command] argv`` (N processes)
  with ``PG_DSN``, ``REDIS_URL``, ``HOST``, ``PORT``, ``TOKEN_SECRET`` pointing
  at the stack's proxies, waits for ``/healthz``, and stops it like every
  other child. ``[command] migrate`` creates the schema before seeding.
- ``kind = "url"``: a deployment already running at ``[url] base_url``, with
  ``[url] pg_dsn`` for seeding and final reads; the harness still puts the
  client hop behind a proxy on 127.0.0.1, so faults apply there.

Every key is validated when the file is read; a bad one is a
:class:`~harness.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import os
import secrets
import tomllib
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from harness.contract import CONTRACT_VERSION, ROLES, SCHEMES, TokenScheme
from harness.errors import ConfigError

__all__ = [
    "CAPABILITIES",
    "CLIENT_FLAWS",
    "KINDS",
    "CommandSpec",
    "Target",
    "UrlSpec",
    "load_target",
]

KINDS: tuple[str, ...] = ("reference", "command", "url")

#: Optional capabilities of contract v1, as a target file declares them.
CAPABILITIES: dict[str, str] = {
    "queue": "POST ...complete?mode=queue, GET /api/queue/jobs/{id}, GET /api/queue/dead-letters",
    "metrics": "GET /metrics in Prometheus text",
    "commit_timestamp": "committedAtMs in the completion response (commit -> receipt latency)",
    "fault_injection": "ALERTBENCH_INJECT_ROLLBACK_RATE: fail a seeded share before COMMIT",
    "processes": "several server processes of one target (--app-processes)",
    "restart": "the harness may SIGKILL and restart the target's processes",
}

#: Flaws of the harness's own client, available whatever the target.
CLIENT_FLAWS: dict[str, str] = {
    "no_rejoin": "the client neither re-joins rooms nor catches up after a reconnect",
    "no_sync": "the client re-joins its rooms after a reconnect but never syncs",
    "no_client_dedupe": "the client surfaces an alert again when catch-up repeats it",
    "no_catchup_overlap": "catch-up asks only for ids above the last one seen",
}


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """``[command]``: how the harness starts a target's processes."""

    argv: tuple[str, ...]
    #: Run once per database before seeding, with ``PG_DSN``; None: the
    #: harness applies the contract's tables itself.
    migrate: tuple[str, ...] | None = None
    #: Working directory (relative paths in the file are from the file's folder).
    cwd: Path
    processes: int = 1
    startup_timeout_s: float = 30.0
    #: Extra environment of every process (and of ``migrate``).
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UrlSpec:
    """``[url]``: a deployment that is already running."""

    base_url: str
    #: Its database, for seeding and the final reads (never through a proxy).
    pg_dsn: str


@dataclass(frozen=True, kw_only=True)
class Target:
    """A pipeline under test."""

    name: str
    kind: str
    description: str = ""
    #: Where it was read from (a path, or ``reference``).
    source: str
    contract: str = CONTRACT_VERSION
    #: ``[auth]``: scheme, claims and lifetime of its tokens.
    auth_scheme: str = "jwt-hs256"
    auth_claims: Mapping[str, Any] = field(default_factory=lambda: {"sub": "{user_id}"})
    auth_ttl_s: int = 3600
    #: The secret: None for the harness to make one per run (reference and
    #: command targets get it as TOKEN_SECRET); a url target must give it.
    auth_secret: str | None = None
    #: ``[roles]``: logical role -> the value the target stores.
    roles: Mapping[str, str] | None = None
    capabilities: frozenset[str] = frozenset()
    #: Named flaws the target can switch on (name -> what it breaks).
    flaws: Mapping[str, str] = field(default_factory=dict)
    command: CommandSpec | None = None
    url: UrlSpec | None = None

    def tokens(self, secret: str) -> TokenScheme:
        """The token minter for this target, with ``secret``."""
        return TokenScheme(
            scheme=self.auth_scheme,
            secret=secret,
            ttl_s=self.auth_ttl_s,
            claims=dict(self.auth_claims),
        )

    def new_secret(self) -> str:
        """The secret of a run: the file's, else a fresh random one."""
        return self.auth_secret or secrets.token_urlsafe(32)

    @property
    def all_flaws(self) -> dict[str, str]:
        """The target's flaws and the harness's client flaws."""
        return {**self.flaws, **CLIENT_FLAWS}

    def missing(self, needs: Iterable[str]) -> list[str]:
        """The capabilities of ``needs`` this target does not declare."""
        return [n for n in needs if n not in self.capabilities]

    def check_flaws(self, names: Iterable[str]) -> frozenset[str]:
        """``names`` if this target (or the client) has them; ConfigError otherwise."""
        chosen = frozenset(names)
        unknown = sorted(chosen - set(self.all_flaws))
        if unknown:
            known = ", ".join(sorted(self.all_flaws)) or "none"
            raise ConfigError(
                "--flaw",
                f"unknown flaw {unknown[0]!r} for target {self.name!r}; it has: {known}",
            )
        return chosen

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for reports."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "contract": self.contract,
            "description": self.description,
            "capabilities": sorted(self.capabilities),
            "flaws": sorted(self.flaws),
            "auth": self.auth_scheme,
            "url": self.url.base_url if self.url else None,
        }


# -- reading ------------------------------------------------------------------


class _Table:
    """One TOML table, with typed, named access and a record of unknown keys."""

    def __init__(self, where: str, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where} [{name}]", "must be a table")
        self.where, self.name, self.data = where, name, data
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.where} [{self.name}] {key}"

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(key)
        value = self.data.get(key, default)
        if value is not None and not isinstance(value, kind):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise ConfigError(self.key(key), f"must be {names}, got {value!r}")
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise ConfigError(self.key(key), f"must be a number, got {value!r}")
        return value

    def argv(self, key: str, *, required: bool) -> tuple[str, ...] | None:
        value = self.get(key, list)
        if value is None:
            if required:
                raise ConfigError(self.key(key), "is required (a list of strings)")
            return None
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(self.key(key), f"must be a non-empty list of strings, got {value!r}")
        return tuple(value)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(
                self.key(unknown[0]), f"unknown key (known: {', '.join(sorted(self.used))})"
            )


def _secret(table: _Table) -> str | None:
    secret: str | None = table.get("secret", str)
    variable = table.get("secret_env", str)
    if secret and variable:
        raise ConfigError(table.key("secret"), "give secret or secret_env, not both")
    if variable:
        secret = os.environ.get(variable)
        if not secret:
            raise ConfigError(table.key("secret_env"), f"${variable} is not set")
    return secret


def _parse(data: dict[str, Any], where: str, folder: Path) -> Target:
    known = {"target", "command", "url", "auth", "roles", "capabilities", "flaws"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where} [{unknown[0]}]", f"unknown table (known: {', '.join(sorted(known))})"
        )
    head = _Table(where, "target", data.get("target", {}))
    name = head.get("name", str)
    if not name:
        raise ConfigError(head.key("name"), "is required")
    kind = head.get("kind", str)
    if kind not in KINDS:
        raise ConfigError(head.key("kind"), f"must be one of {', '.join(KINDS)}, got {kind!r}")
    contract = head.get("contract", str, CONTRACT_VERSION)
    if contract != CONTRACT_VERSION:
        raise ConfigError(
            head.key("contract"),
            f"this alertbench speaks contract {CONTRACT_VERSION}, the target says {contract!r}",
        )
    description = head.get("description", str, "")
    head.done()

    auth = _Table(where, "auth", data.get("auth", {}))
    scheme = auth.get("scheme", str, "jwt-hs256")
    if scheme not in SCHEMES[:2] and ":" not in scheme:
        raise ConfigError(auth.key("scheme"), f"must be {', '.join(SCHEMES)}, got {scheme!r}")
    claims = auth.get("claims", dict, {"sub": "{user_id}"})
    ttl_s = auth.get("ttl_s", int, 3600)
    secret = _secret(auth)
    auth.done()

    roles_data = data.get("roles")
    roles: dict[str, str] | None = None
    if roles_data is not None:
        table = _Table(where, "roles", roles_data)
        roles = {role: table.get(role, str) for role in ROLES}
        missing = [r for r, v in roles.items() if not v]
        if missing:
            raise ConfigError(
                table.key(missing[0]), "is required (the role as the target stores it)"
            )
        if len(set(roles.values())) != len(roles):
            raise ConfigError(table.key(ROLES[0]), "every role needs a value of its own")
        table.done()

    caps = _Table(where, "capabilities", data.get("capabilities", {}))
    capabilities = frozenset(c for c in CAPABILITIES if caps.get(c, bool, False))
    flaw_names = caps.get("flaws", list, [])
    caps.done()
    flaws: dict[str, str] = dict.fromkeys(flaw_names, "")
    if "flaws" in data:
        table = _Table(where, "flaws", data["flaws"])
        for flaw in data["flaws"]:
            flaws[flaw] = table.get(flaw, str) or ""
    if not all(isinstance(f, str) and f for f in flaws):
        raise ConfigError(caps.key("flaws"), "must be a list of flaw names")
    clash = sorted(set(flaws) & set(CLIENT_FLAWS))
    if clash:
        raise ConfigError(caps.key("flaws"), f"{clash[0]!r} is a flaw of the harness's client")

    command = url = None
    if kind == "command":
        table = _Table(where, "command", data.get("command", {}))
        cwd_text = table.get("cwd", str, ".")
        env = table.get("env", dict, {})
        if not all(isinstance(v, str) for v in env.values()):
            raise ConfigError(table.key("env"), "values must be strings")
        processes = table.get("processes", int, 1)
        if not 1 <= processes <= 32:
            raise ConfigError(table.key("processes"), f"must be in 1..32, got {processes}")
        timeout = table.get("startup_timeout_s", (int, float), 30.0)
        if not 0 < timeout <= 600:
            raise ConfigError(table.key("startup_timeout_s"), f"must be in (0, 600], got {timeout}")
        command = CommandSpec(
            argv=table.argv("argv", required=True) or (),
            migrate=table.argv("migrate", required=False),
            cwd=(folder / cwd_text).resolve(),
            processes=processes,
            startup_timeout_s=float(timeout),
            env=env,
        )
        table.done()
        if not command.cwd.is_dir():
            raise ConfigError(table.key("cwd"), f"{command.cwd} is not a folder")
    elif "command" in data:
        raise ConfigError(f"{where} [command]", f"only for kind = 'command', not {kind!r}")
    if kind == "url":
        table = _Table(where, "url", data.get("url", {}))
        base_url = table.get("base_url", str)
        parsed = urllib.parse.urlsplit(base_url or "")
        if parsed.scheme != "http" or not parsed.hostname:
            raise ConfigError(
                table.key("base_url"),
                "must be an http:// URL (the harness proxies the hop at TCP level),"
                f" got {base_url!r}",
            )
        dsn = table.get("pg_dsn", str)
        variable = table.get("pg_dsn_env", str)
        if variable:
            dsn = os.environ.get(variable)
        if not dsn or not dsn.startswith(("postgres://", "postgresql://")):
            raise ConfigError(
                table.key("pg_dsn"),
                "a postgresql:// DSN of the target's database is required (or pg_dsn_env)",
            )
        table.done()
        if secret is None and ":" not in scheme:
            raise ConfigError(
                auth.key("secret"), "a url target must give its token secret (or secret_env)"
            )
        url = UrlSpec(base_url=base_url.rstrip("/"), pg_dsn=dsn)
    elif "url" in data:
        raise ConfigError(f"{where} [url]", f"only for kind = 'url', not {kind!r}")
    target = Target(
        name=name,
        kind=kind,
        description=description,
        source=where,
        contract=contract,
        auth_scheme=scheme,
        auth_claims=claims,
        auth_ttl_s=ttl_s,
        auth_secret=secret,
        roles=roles,
        capabilities=capabilities,
        flaws=flaws,
        command=command,
        url=url,
    )
    target.tokens(secret or "x" * 32)  # a bad scheme or claim fails here, not mid-run
    return target


def load_target(spec: str | Path) -> Target:
    """``reference`` or the path of a target file; ConfigError on anything wrong."""
    if str(spec) == "reference":
        text = files("harness.targets").joinpath("reference.toml").read_text(encoding="utf-8")
        return _parse(tomllib.loads(text), "reference", Path.cwd())
    path = Path(spec)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--target", f"no such file: {path} (or say 'reference')") from None
    except OSError as exc:
        raise ConfigError("--target", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return _parse(data, str(path), path.resolve().parent)
