"""The report over time: receipts per second and their latency, outages per client."""

from __future__ import annotations

import dataclasses

from harness.history import History
from harness.report import make_results, receipt_timeline, reconnections, render_html


def _history() -> History:
    h = History(wall_clock=lambda: 1_700_000_000.0)
    h.session("c7", "connect", user_id=7, mono_s=100.0)
    for i in range(6):
        t = 100.0 + i * 0.5
        op = h.invoke("g", "complete", {"i": i}, intended_mono_s=t, mono_s=t)
        h.ok(op, {"alert_id": i}, mono_s=t + 0.02)
        # Alert 4's commit time is unknown (the target reports none).
        h.commit(
            alert_id=i,
            project_id=1,
            assignee_id=7,
            op_id=op.op_id,
            mono_s=t + 0.02 if i == 4 else t + 0.01,
            requested_mono_s=t,
            responded_mono_s=t + 0.02,
            server_time=i != 4,
        )
        h.receive("c7", user_id=7, event="new_alert", alert_id=i, mono_s=t + 0.05)
    h.receive("c7", user_id=7, event="alerts_refresh", payload={"alertId": 1}, mono_s=101.0)
    h.session("c7", "disconnect", user_id=7, reason="transport close", mono_s=103.0)
    h.session("c7", "reconnect", user_id=7, mono_s=104.5)
    h.session("c7", "caught_up", user_id=7, mono_s=104.75)
    h.session("c8", "disconnect", user_id=8, mono_s=103.0)  # never came back
    return h


def test_receipts_per_second_and_their_latency_per_event_type() -> None:
    buckets = {(b.t_s, b.event): b for b in receipt_timeline(_history())}
    first = buckets[(0.0, "new_alert")]
    assert first.count == 2  # alerts 0 and 1 in the first second
    assert 39.0 <= (first.p50_ms or 0) <= 41.0  # commit -> receipt: 40 ms
    # Alert 4 (t = 2.0 s) has no commit time: measured from its request's start.
    third = buckets[(2.0, "new_alert")]
    assert (third.p99_ms or 0) >= 49.0
    assert buckets[(1.0, "alerts_refresh")].count == 1


def test_each_outage_has_its_reconnect_and_catch_up_times() -> None:
    rows = {r["client"]: r for r in reconnections(_history())}
    assert rows["c7"]["dropped_at_s"] == 3.0
    assert rows["c7"]["reconnected_ms"] == 1500.0
    assert rows["c7"]["caught_up_ms"] == 1750.0
    assert rows["c7"]["reason"] == "transport close"
    assert rows["c8"]["reconnected_ms"] is None


def test_the_report_shows_them_and_the_hot_queries_as_tables() -> None:
    history = _history()
    results = make_results(
        run_id="r",
        scenario="network",
        started_at="",
        finished_at="",
        receipts=receipt_timeline(history),
        extra={
            "reconnections": reconnections(history),
            "indexes": {
                "alerts": 100000,
                "queries": [
                    {
                        "query": "user_alerts",
                        "purpose": "GET /api/users/{id}/alerts",
                        "indexes_used": ["idx_workflow_alerts_assignee_status"],
                        "seq_scans": [],
                        "with_indexes_ms": 0.05,
                        "without_indexes_ms": 12.5,
                        "speedup": 250.0,
                        "judged": True,
                    }
                ],
            },
        },
    )
    html = render_html(results)
    assert "Events received per second" in html
    assert "Reconnections (2 client outages)" in html
    assert "idx_workflow_alerts_assignee_status" in html
    assert "250x" in html
    assert "<svg" in html
    empty = render_html(dataclasses.replace(results, receipts=(), extra={}))
    assert "Reconnections" not in empty
