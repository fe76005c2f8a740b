"""Operations of a history as (invoke, completion) pairs (shared by several checkers)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from harness.history import Event, Op

__all__ = ["list_reads", "operations"]


def operations(
    events: Iterable[Event], fs: Collection[str], *, needs: Collection[str] = ()
) -> list[tuple[Op, Op | None]]:
    """Each operation named in ``fs`` whose invoke value is a dict holding the
    keys ``needs``, with its completion (``None``: it never completed), in
    the order of the invokes. O(n)."""
    invokes: list[Op] = []
    ends: dict[int, Op] = {}
    for e in events:
        if not isinstance(e, Op) or e.f not in fs:
            continue
        if e.type == "invoke":
            if isinstance(e.value, dict) and all(k in e.value for k in needs):
                invokes.append(e)
        else:
            ends[e.op_id] = e
    return [(inv, ends.get(inv.op_id)) for inv in invokes]


def list_reads(
    events: Iterable[Event], read_ops: Collection[str]
) -> list[tuple[Op, Op, list[dict[str, Any]]]]:
    """(invoke, ok, items read) of each successful read of a user's alert list:
    its invoke names ``user_id`` and its result lists the ``items`` read."""
    out: list[tuple[Op, Op, list[dict[str, Any]]]] = []
    for inv, end in operations(events, read_ops, needs=("user_id",)):
        if end is None or end.type != "ok" or not isinstance(end.value, dict):
            continue
        items = end.value.get("items")
        if isinstance(items, list):
            out.append((inv, end, [i for i in items if isinstance(i, dict)]))
    return out
