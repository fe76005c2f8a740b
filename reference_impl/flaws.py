"""Named flaws: defects of the seed system that the reference can switch on.

Each flaw changes exactly one behaviour, so a scenario that fails under a flaw
fails for that flaw's reason. With no flaw the reference honours the pipeline
contract (docs/contract.md).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["ALL_FLAWS", "Flaw", "FlawError", "parse_flaws"]


class Flaw(enum.StrEnum):
    """A defect of the seed system, selected with ``--flaw NAME``."""

    N_PLUS_ONE = "n_plus_one"
    """Batch generation loads tracker, line item and member one project at a time."""
    NO_UNIQUE_INDEX = "no_unique_index"
    """The partial unique index is dropped; inserts check-then-insert (racy)."""
    UNSCOPED_COMPLETE = "unscoped_complete"
    """Completion marks *every* project's ACTIVE alerts for the step COMPLETED."""
    NON_ATOMIC_COMPLETION = "non_atomic_completion"
    """Completion runs its statements without a transaction or tracker lock."""
    NO_RETRY = "no_retry"
    """Queued jobs get a single attempt: the first failure is final."""
    NO_BACKOFF = "no_backoff"
    """Queued jobs retry at once, without backoff: an outage eats every attempt."""
    NO_SWEEP = "no_sweep"
    """Workers never sweep: the job of a worker that died mid-job stays active forever."""
    STALE_CACHE = "stale_cache"
    """The per-user alert cache is never invalidated; it only expires (TTL)."""
    NO_CACHE_FALLBACK = "no_cache_fallback"
    """A Redis failure fails the alert-list read instead of reading Postgres."""
    NO_REPLAY = "no_replay"
    """The relay does not replay what committed while its LISTEN connection was down."""
    EMIT_BEFORE_COMMIT = "emit_before_commit"
    """The alert emitter is called inside the transaction, before commit."""
    NO_ROOM_AUTH = "no_room_auth"
    """Socket.IO: ``subscribe_project`` joins any project room (delivery issue)."""
    MEMORY_LEAK = "memory_leak"
    """Every completion keeps 64 KB in a list that is never emptied."""
    IGNORE_PHASE_ORDER = "ignore_phase_order"
    """Completion orders sections and items as if there were one phase."""
    ID_ORDER_ADVANCE = "id_order_advance"
    """Completion moves to the next active line item by id, not in workflow order."""
    NO_REJOIN = "no_rejoin"
    """Socket.IO client: no room re-join or catch-up after a reconnect (delivery issue)."""


ALL_FLAWS: frozenset[Flaw] = frozenset(Flaw)

#: One line per flaw, for help texts and reports.
DESCRIPTIONS: dict[Flaw, str] = {
    Flaw.N_PLUS_ONE: "batch generation queries one project at a time (N+1)",
    Flaw.NO_UNIQUE_INDEX: "no unique index on ACTIVE alerts; check-then-insert races",
    Flaw.UNSCOPED_COMPLETE: "completion closes every project's alerts for the step",
    Flaw.NON_ATOMIC_COMPLETION: "completion without a transaction or tracker lock",
    Flaw.NO_RETRY: "queued jobs get a single attempt",
    Flaw.NO_BACKOFF: "queued jobs retry at once, without backoff",
    Flaw.NO_SWEEP: "a job whose worker died mid-job is never run again",
    Flaw.STALE_CACHE: "the per-user alert cache is never invalidated (TTL only)",
    Flaw.NO_CACHE_FALLBACK: "alert-list reads fail while Redis is down (no Postgres fallback)",
    Flaw.NO_REPLAY: "the relay loses what committed while its LISTEN connection was down",
    Flaw.EMIT_BEFORE_COMMIT: "alerts are emitted inside the transaction, before commit",
    Flaw.NO_ROOM_AUTH: "anyone may join any project's Socket.IO room",
    Flaw.MEMORY_LEAK: "every completion keeps 64 KB that is never freed",
    Flaw.IGNORE_PHASE_ORDER: "completion ignores the phases' order when it advances",
    Flaw.ID_ORDER_ADVANCE: "completion advances to the next line item by id, not position",
    Flaw.NO_REJOIN: "the client neither re-joins rooms nor catches up after a reconnect",
}


class FlawError(ValueError):
    """An unknown flaw name was given."""


def parse_flaws(names: Iterable[str | Flaw]) -> frozenset[Flaw]:
    """Validate flaw names; raise FlawError naming the valid ones on a bad name.

    >>> sorted(parse_flaws(["n_plus_one", "no_retry"]))
    [<Flaw.N_PLUS_ONE: 'n_plus_one'>, <Flaw.NO_RETRY: 'no_retry'>]
    """
    flaws: set[Flaw] = set()
    for name in names:
        if isinstance(name, Flaw):
            flaws.add(name)
            continue
        try:
            flaws.add(Flaw(name.strip().lower().replace("-", "_")))
        except ValueError:
            valid = ", ".join(sorted(f.value for f in Flaw))
            raise FlawError(f"unknown flaw {name!r}; valid flaws: {valid}") from None
    return frozenset(flaws)
