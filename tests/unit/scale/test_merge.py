"""Merging shard histories, and the shard plan's round trip."""

from __future__ import annotations

import pytest

from harness.contract import SeedResult, TokenScheme
from harness.contract.seed import LineItem
from harness.errors import ConfigError
from harness.history import Commit, History, Op, Receive, pair_operations
from harness.scale import ShardHistory, ShardPlan, merge_generators, merge_histories, shard_of
from harness.scenario import RunParams


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _shard(start: float, user: int, alert: int) -> History:
    """One shard: a completion (op id 1) that committed ``alert``, then its receipt."""
    clock = Clock(start)
    h = History(mono_clock=clock, wall_clock=lambda: 1000.0 + clock.t)
    op = h.invoke("generator", "complete", {"project_id": alert}, intended_mono_s=start)
    clock.t += 0.010
    h.commit(alert_id=alert, project_id=alert, assignee_id=user, op_id=op.op_id)
    clock.t += 0.005
    h.receive(f"c{user}", user_id=user, event="new_alert", alert_id=alert)
    clock.t += 0.005
    h.ok(op, {"alert_id": alert})
    return h


def test_merged_history_keeps_ids_unique_names_apart_and_time_in_order() -> None:
    # Both shards number their operation 1 and both have a client c5.
    a, b = _shard(10.0, 5, 100), _shard(10.012, 5, 200)
    into = History()
    count = merge_histories(into, [ShardHistory(0, list(a)), ShardHistory(1, list(b), 0.5)])
    assert count == len(a) + len(b) == len(into)
    ops = pair_operations(into)
    assert sorted(o.op_id for o in ops) == [1, 2]
    assert {o.process for o in ops} == {"w0/generator", "w1/generator"}
    assert all(o.outcome == "ok" for o in ops)
    receivers = {e.process for e in into if isinstance(e, Receive)}
    assert receivers == {"w0/c5", "w1/c5"}
    # Each commit still names the operation that caused it.
    by_alert = {int(c.alert_id): c.op_id for c in into if isinstance(c, Commit)}
    ids = {o.invoke.value["project_id"]: o.op_id for o in ops}
    assert by_alert == ids
    # Shard 1's clock moved by its shift; everything in time order.
    times = [e.mono_s for e in into]
    assert times == sorted(times)
    second = next(o for o in ops if o.process == "w1/generator")
    assert second.invoke.intended_mono_s == pytest.approx(10.512)
    assert second.latency_ms == pytest.approx(20.0)


def test_merged_history_continues_after_the_conductors_own_operations() -> None:
    into = History()
    own = into.invoke("runner", "generate")
    into.ok(own)
    merge_histories(into, [ShardHistory(0, list(_shard(1.0, 1, 7)))])
    assert sorted(e.op_id for e in into if isinstance(e, Op) and e.type == "invoke") == [1, 2]


def _report(**changes: object) -> dict[str, object]:
    report: dict[str, object] = {
        "planned": 10, "launched": 10, "completed": 10, "ok": 10, "failed": 0,
        "indeterminate": 0, "cancelled": 0, "planned_rate_per_s": 5.0,
        "achieved_rate_per_s": 5.0, "max_lag_ms": 1.0, "p99_lag_ms": 0.5, "late_starts": 0,
        "late_start_threshold_ms": 10.0, "max_in_flight": 512, "peak_in_flight": 2,
        "cap_hits": 0, "lag_threshold_ms": 50.0, "elapsed_s": 2.0, "valid": True,
        "invalid_reason": None,
    }  # fmt: skip
    return {**report, **changes}


def test_generator_reports_add_up_and_an_invalid_shard_invalidates_the_run() -> None:
    into = History()
    merge_histories(into, [ShardHistory(0, list(_shard(1.0, 1, 7)))])
    merged = merge_generators(
        [_report(), _report(p99_lag_ms=80.0, valid=False, invalid_reason="lag")], into
    )
    assert (merged.planned, merged.ok, merged.planned_rate_per_s) == (20, 20, 10.0)
    assert merged.p99_lag_ms == 80.0
    assert not merged.valid
    assert merged.invalid_reason == "shard 1: lag"
    assert merged.latency.corrected.count == 1


def _seeded(projects: int) -> SeedResult:
    item = LineItem(1, 1, 1, "step", "project_manager", 1, True)
    return SeedResult(
        project_ids=list(range(1, projects + 1)),
        members={p: {"project_manager": 100 + p} for p in range(1, projects + 1)},
        tracker_ids={p: p for p in range(1, projects + 1)},
        line_items=[item],
    )


def test_shards_take_disjoint_slices_of_every_project() -> None:
    seeded = _seeded(7)
    slices = [shard_of(seeded, k, 3).project_ids for k in range(3)]
    assert sorted(p for s in slices for p in s) == seeded.project_ids
    assert slices[1] == [2, 5]
    with pytest.raises(ConfigError, match="shard 2 would have none"):
        shard_of(_seeded(2), 2, 3)


def test_a_plan_survives_its_json_form() -> None:
    plan = ShardPlan(
        index=1,
        shards=2,
        app_urls=["http://127.0.0.1:1"],
        direct_dsn="postgresql://x@127.0.0.1/db",
        target="reference",
        tokens=TokenScheme(secret="s" * 32),
        seeded=shard_of(_seeded(4), 1, 2),
        params=RunParams(projects=4, workers=2, flaws=frozenset({"no_rejoin"})),
        stats=True,
        history_path="/tmp/h.jsonl",
    )
    back = ShardPlan.from_dict(plan.to_dict())
    assert back.seeded == plan.seeded
    assert back.params.flaws == frozenset({"no_rejoin"})
    assert back.params.workers == 0  # a shard does not shard again
    assert back.tokens == plan.tokens
    with pytest.raises(ConfigError, match="protocol"):
        ShardPlan.from_dict({**plan.to_dict(), "protocol": 99})
