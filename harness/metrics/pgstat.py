"""Server-side query counts: the difference of two ``pg_stat_statements`` snapshots.

The runner reads ``SELECT queryid, query, calls, total_exec_time FROM
pg_stat_statements`` (optionally ``userid``, ``dbid``, ``toplevel``) before and
after the measured load, as plain dicts; :func:`diff_pg_stat_statements` turns
the two into per-statement deltas and :meth:`PgStatDiff.queries_per_request`
divides by the number of requests. Counting on the server means an
application cannot under-report its own queries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_EXCLUDE",
    "InvalidSnapshotError",
    "PgStatDiff",
    "QueryDelta",
    "diff_pg_stat_statements",
]

DEFAULT_EXCLUDE: Final = (
    r"pg_stat_statements",
    r"^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|SAVEPOINT|RELEASE|SET|SHOW|DISCARD)\b",
)
"""Statements not counted as queries: the snapshot itself, transaction control and session
settings (a driver may add these; they are not the work a request causes)."""

_REQUIRED: Final = ("queryid", "query", "calls", "total_exec_time")
_KEY_COLUMNS: Final = ("userid", "dbid", "toplevel", "queryid")


class InvalidSnapshotError(ValueError):
    """A snapshot row lacks a column or has a wrong value; the message names both."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryDelta:
    """How much one normalised statement ran between the two snapshots."""

    queryid: int | str
    """``pg_stat_statements.queryid``."""
    query: str
    """The normalised statement text (``$1`` for parameters)."""
    calls: int
    """Executions between the snapshots."""
    total_exec_time_ms: float
    """Execution time spent between the snapshots, ms."""

    @property
    def mean_exec_time_ms(self) -> float | None:
        """Mean execution time per call, ms (``None`` without calls)."""
        return self.total_exec_time_ms / self.calls if self.calls else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "queryid": self.queryid,
            "query": self.query,
            "calls": self.calls,
            "total_exec_time_ms": self.total_exec_time_ms,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PgStatDiff:
    """Per-statement deltas, most-called first."""

    deltas: tuple[QueryDelta, ...]
    """Statements that ran at least once between the snapshots (excluded ones removed)."""
    excluded_calls: int
    """Calls of statements matching the exclusion patterns."""

    @property
    def total_calls(self) -> int:
        """All counted statement executions."""
        return sum(d.calls for d in self.deltas)

    @property
    def total_exec_time_ms(self) -> float:
        """All counted execution time, ms."""
        return sum(d.total_exec_time_ms for d in self.deltas)

    def queries_per_request(self, requests: int) -> float | None:
        """Counted executions divided by ``requests`` (``None`` when ``requests`` is 0)."""
        if requests < 0:
            raise ValueError(f"requests must be >= 0, got {requests}")
        return self.total_calls / requests if requests else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "deltas": [d.to_dict() for d in self.deltas],
            "excluded_calls": self.excluded_calls,
            "total_calls": self.total_calls,
            "total_exec_time_ms": self.total_exec_time_ms,
        }


def _rows(
    rows: Iterable[Mapping[str, Any]], which: str
) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    out: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for n, row in enumerate(rows):
        for column in _REQUIRED:
            if column not in row:
                raise InvalidSnapshotError(f"{which} snapshot row {n}: missing column {column!r}")
        calls = row["calls"]
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise InvalidSnapshotError(
                f"{which} snapshot row {n}: calls must be an integer >= 0, got {calls!r}"
            )
        exec_time = row["total_exec_time"]
        if (
            isinstance(exec_time, bool)
            or not isinstance(exec_time, int | float)
            or not math.isfinite(exec_time)
        ):
            raise InvalidSnapshotError(
                f"{which} snapshot row {n}: total_exec_time must be a number, got {exec_time!r}"
            )
        key = tuple(row.get(column) for column in _KEY_COLUMNS)
        if key in out:
            # The same statement may appear once per user/db; without those
            # columns the rows are merged, which is what a per-request count wants.
            merged = dict(out[key])
            merged["calls"] = merged["calls"] + calls
            merged["total_exec_time"] = merged["total_exec_time"] + exec_time
            out[key] = merged
        else:
            out[key] = row
    return out


def diff_pg_stat_statements(
    before: Iterable[Mapping[str, Any]],
    after: Iterable[Mapping[str, Any]],
    *,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> PgStatDiff:
    """Per-statement deltas from ``before`` to ``after``. O(n).

    A statement absent from ``before`` counts from zero; one whose counter went
    down (evicted and re-entered, or ``pg_stat_statements_reset()``) counts its
    ``after`` value. ``exclude`` are regular expressions (case-insensitive)
    searched in the statement text.
    """
    patterns = [re.compile(p, re.IGNORECASE) for p in exclude]
    old = _rows(before, "before")
    deltas: list[QueryDelta] = []
    excluded = 0
    for key, row in _rows(after, "after").items():
        prev = old.get(key)
        calls = int(row["calls"])
        exec_ms = float(row["total_exec_time"])
        if prev is not None and int(prev["calls"]) <= calls:
            calls -= int(prev["calls"])
            exec_ms = max(0.0, exec_ms - float(prev["total_exec_time"]))
        if calls == 0:
            continue
        query = str(row["query"])
        if any(p.search(query) for p in patterns):
            excluded += calls
            continue
        deltas.append(
            QueryDelta(queryid=row["queryid"], query=query, calls=calls, total_exec_time_ms=exec_ms)
        )
    deltas.sort(key=lambda d: (-d.calls, d.query))
    return PgStatDiff(deltas=tuple(deltas), excluded_calls=excluded)
