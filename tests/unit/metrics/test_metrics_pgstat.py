"""pg_stat_statements snapshot diffs and queries per request."""

from __future__ import annotations

from typing import Any

import pytest

from harness.metrics import InvalidSnapshotError, diff_pg_stat_statements


def row(qid: int, query: str, calls: int, ms: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"queryid": qid, "query": query, "calls": calls, "total_exec_time": ms, **extra}


def test_deltas_per_statement_sorted_by_calls() -> None:
    before = [row(1, "SELECT a", 10, 5.0), row(2, "UPDATE b", 3, 2.0)]
    after = [
        row(1, "SELECT a", 40, 20.0),
        row(2, "UPDATE b", 3, 2.0),  # did not run: left out
        row(3, "INSERT c", 10, 4.0),  # new statement: counted from zero
    ]
    diff = diff_pg_stat_statements(before, after)
    assert [(d.queryid, d.calls) for d in diff.deltas] == [(1, 30), (3, 10)]
    assert diff.deltas[0].total_exec_time_ms == pytest.approx(15.0)
    assert diff.deltas[0].mean_exec_time_ms == pytest.approx(0.5)
    assert diff.total_calls == 40
    assert diff.queries_per_request(10) == pytest.approx(4.0)
    assert diff.queries_per_request(0) is None
    assert diff.to_dict()["total_calls"] == 40


def test_transaction_control_and_the_snapshot_itself_are_excluded() -> None:
    after = [
        row(1, "BEGIN", 5),
        row(2, "commit", 5),
        row(3, "SELECT queryid FROM pg_stat_statements", 1),
        row(4, "SELECT 1", 5),
    ]
    diff = diff_pg_stat_statements([], after)
    assert [d.query for d in diff.deltas] == ["SELECT 1"]
    assert diff.excluded_calls == 11
    assert diff_pg_stat_statements([], after, exclude=()).total_calls == 16


def test_a_reset_counter_counts_its_after_value() -> None:
    diff = diff_pg_stat_statements([row(1, "SELECT a", 100)], [row(1, "SELECT a", 7)])
    assert diff.total_calls == 7


def test_rows_per_user_and_database_are_kept_apart() -> None:
    before = [row(1, "SELECT a", 1, userid=10), row(1, "SELECT a", 1, userid=11)]
    after = [row(1, "SELECT a", 3, userid=10), row(1, "SELECT a", 6, userid=11)]
    assert diff_pg_stat_statements(before, after).total_calls == 7


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"queryid": 1, "query": "x", "calls": 1},
            "after snapshot row 0: missing column 'total_exec_time'",
        ),
        (row(1, "x", -1), "calls must be an integer >= 0, got -1"),
        (row(1, "x", True), "calls must be an integer"),  # type: ignore[arg-type]
        ({**row(1, "x", 1), "total_exec_time": "fast"}, "total_exec_time must be a number"),
    ],
)
def test_bad_rows_are_named(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSnapshotError, match=message):
        diff_pg_stat_statements([], [bad])
    with pytest.raises(ValueError, match="requests must be >= 0"):
        diff_pg_stat_statements([], []).queries_per_request(-1)
