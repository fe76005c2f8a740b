"""What one shard of a sharded load run is given, and the lines it speaks.

A shard is a process of its own (``python -m harness.scale.shard``) that runs
the load scenario's subscribers and open-loop generator for a disjoint slice
of the projects (every ``shards``-th project, starting at ``index``). It is
told everything as a :class:`ShardPlan` (JSON, the first line on its stdin),
then speaks JSON lines: its reports on stdout, the conductor's orders on
stdin (see :mod:`harness.scale.shard` for the sequence).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Final

from harness.contract import SeedResult, TokenScheme
from harness.contract.seed import LineItem
from harness.errors import ConfigError
from harness.scenario import RunParams

__all__ = ["DUMP_END", "PROTOCOL", "ShardPlan", "decode", "encode", "shard_of"]

PROTOCOL: Final = 1
"""Version of the plan and message layout; a shard refuses another."""


def shard_of(seeded: SeedResult, index: int, shards: int) -> SeedResult:
    """The seeded data of shard ``index`` of ``shards``: every ``shards``-th
    project (their members, trackers) and the whole workflow template."""
    if not 0 <= index < shards:
        raise ConfigError("shard", f"index must be in 0..{shards - 1}, got {index}")
    mine = seeded.project_ids[index::shards]
    if not mine:
        raise ConfigError(
            "--workers",
            f"{shards} shards for {len(seeded.project_ids)} projects: shard {index}"
            " would have none; seed more projects or use fewer workers",
        )
    return SeedResult(
        project_ids=mine,
        members={p: dict(seeded.members[p]) for p in mine},
        tracker_ids={p: seeded.tracker_ids[p] for p in mine if p in seeded.tracker_ids},
        line_items=list(seeded.line_items),
    )


@dataclass(frozen=True, kw_only=True)
class ShardPlan:
    """Everything a shard needs: addresses, tokens, its data, the run's knobs."""

    index: int
    shards: int
    #: The app's URLs (through its proxies) and the database for reading
    #: created alerts (batch generation answers with ids only).
    app_urls: list[str]
    direct_dsn: str
    target: str
    tokens: TokenScheme
    #: This shard's projects only (see :func:`shard_of`).
    seeded: SeedResult
    params: RunParams
    #: Stream per-request figures (``stats`` lines) for Locust's statistics.
    stats: bool = False
    #: Where the shard writes its history (a path on the shard's machine).
    history_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "index": self.index,
            "shards": self.shards,
            "app_urls": list(self.app_urls),
            "direct_dsn": self.direct_dsn,
            "target": self.target,
            "tokens": {
                "scheme": self.tokens.scheme,
                "secret": self.tokens.secret,
                "ttl_s": self.tokens.ttl_s,
                "claims": dict(self.tokens.claims),
            },
            "seeded": {
                "project_ids": self.seeded.project_ids,
                "members": {str(p): r for p, r in self.seeded.members.items()},
                "tracker_ids": {str(p): t for p, t in self.seeded.tracker_ids.items()},
                "line_items": [dataclasses.asdict(li) for li in self.seeded.line_items],
            },
            "params": {
                **{k: v for k, v in self.params.to_dict().items() if k != "locust"},
                "workers": 0,
            },
            "stats": self.stats,
            "history_path": self.history_path,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardPlan:
        if data.get("protocol") != PROTOCOL:
            raise ConfigError(
                "shard plan", f"protocol {data.get('protocol')!r}, this shard speaks {PROTOCOL}"
            )
        seeded = data["seeded"]
        params = dict(data["params"])
        params["flaws"] = frozenset(params["flaws"])
        return cls(
            index=int(data["index"]),
            shards=int(data["shards"]),
            app_urls=list(data["app_urls"]),
            direct_dsn=str(data["direct_dsn"]),
            target=str(data["target"]),
            tokens=TokenScheme(**data["tokens"]),
            seeded=SeedResult(
                project_ids=[int(p) for p in seeded["project_ids"]],
                members={int(p): dict(r) for p, r in seeded["members"].items()},
                tracker_ids={int(p): int(t) for p, t in seeded["tracker_ids"].items()},
                line_items=[LineItem(**li) for li in seeded["line_items"]],
            ),
            params=RunParams(**params),
            stats=bool(data["stats"]),
            history_path=str(data["history_path"]),
        )

    def with_history_path(self, path: str) -> ShardPlan:
        return dataclasses.replace(self, history_path=path)


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes | str) -> dict[str, Any]:
    """A protocol line back; ConfigError names a malformed one."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError("shard message", f"not JSON: {exc.msg}: {line[:200]!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        raise ConfigError("shard message", f"expected an object with a kind: {line[:200]!r}")
    return message


#: The last line a shard writes to stderr when asked (SIGUSR1) where its
#: tasks wait.
DUMP_END = "--- end of the shard's tasks"
