"""The scenarios as pytest tests (``pytest scenarios/``, marker ``scenario``).

At a reduced size that keeps CI fast: the reference passes every scenario,
and flaws that a scenario exists to catch make it fail, for the right reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import scenarios
from harness.report import RunResults
from harness.runner import RunOptions, run_scenario
from harness.scenario import RunParams
from harness.stack import Stack, StackConfig, start_stack

pytestmark = [pytest.mark.scenario, pytest.mark.integration]

SMALL = RunParams(projects=60, rate_per_s=20.0, duration_s=3.0, seed=7, drain_s=10.0)

#: The tests judge generation latency at a bound for a shared CI machine, not
#: at the default SLO's 100 ms. At CI's size the p99 comes from about 60
#: requests, so it is their second slowest, and one hiccup of a shared 2-core
#: machine decides it: CI failed the Node target's ``load`` at 105.7 ms, where
#: its slowest request at idle is 19-40 ms (12 runs, load < 1). The default is
#: judged where it means something: ``nox -s scenarios`` at full size and
#: docs/performance.md, on an idle machine. This bound, about 8 times the
#: slowest idle request, still fails a pipeline that stalls or queues its
#: requests behind each other.
CI_SLO_OVERRIDES = ("generation_p99_ms=300",)


def ci_options(tmp_path: Path) -> RunOptions:
    """How the scenario tests run: reports kept (see :func:`reports_dir`),
    latency judged at the CI bound (:data:`CI_SLO_OVERRIDES`)."""
    return RunOptions(reports_dir=reports_dir(tmp_path), slo_overrides=CI_SLO_OVERRIDES)


def why(results: RunResults) -> str:
    """What a failed verdict's assertion prints: every check and SLO that did
    not pass, and for a latency, what else was slow (the harness's own event
    loop and collections, the app's collections, the machine) and the latency
    second by second, so a CI failure can be told apart from a slow pipeline. A
    string, one reason a line: pytest prints it whole."""
    reasons: list[object] = [(c.name, c.summary) for c in results.checks if c.valid is not True]
    failed = [s for s in results.slos if s.status != "pass"]
    reasons += [(s.name, s.measured, s.target, s.note) for s in failed]
    if any(s.unit == "ms" for s in failed):
        generator = results.generator or {}
        busy = (results.resources or {}).get("machine_busy_pct")
        reasons.append(
            {
                "machine_busy_pct": busy,
                "harness_loop_lag_ms": (generator.get("max_lag_ms"), generator.get("p99_lag_ms")),
                "late_starts": generator.get("late_starts"),
                "harness_gc": results.extra.get("harness_gc_pauses"),
                "app_gc": results.extra.get("app_gc_pauses"),
                # Per second of the run: (start s, requests, p50 ms, max ms).
                "timeline": [(b.t_s, b.count, b.p50_ms, b.max_ms) for b in results.timeline],
            }
        )
    return "\n".join(json.dumps(r, default=str) for r in reasons)


@pytest.fixture(scope="module")
def stack(alertbench_stack_config: StackConfig) -> Iterator[Stack]:
    """A stack of this module's own: scenarios start and stop apps on it."""
    with start_stack(alertbench_stack_config) as stack:
        yield stack


def reports_dir(tmp_path: Path) -> Path:
    """Where a test's scenario reports go: ``$ALERTBENCH_ARTIFACTS/scenario-reports``
    when set (CI keeps them), else the test's own temporary folder."""
    artifacts = os.environ.get("ALERTBENCH_ARTIFACTS")
    return Path(artifacts) / "scenario-reports" if artifacts else tmp_path


async def _run(stack: Stack, name: str, tmp_path: Path, params: RunParams = SMALL) -> RunResults:
    flaws = "-".join(sorted(params.flaws)) or "sound"
    return await run_scenario(
        scenarios.SCENARIOS[name],
        stack,
        params,
        options=ci_options(tmp_path),
        run_id=f"test-{name}-{flaws}",
    )


def _failed(results: RunResults) -> set[str]:
    return {c.name for c in results.checks if c.valid is False} | {
        f"slo:{s.name}" for s in results.slos if s.status == "fail"
    }


@pytest.mark.parametrize("name", scenarios.MAIN_SUITE)
async def test_the_reference_passes(stack: Stack, name: str, tmp_path: Path) -> None:
    results = await _run(stack, name, tmp_path)
    assert results.errors == ()
    assert _failed(results) == set(), why(results)
    assert all(c.valid is True for c in results.checks), [
        (c.name, c.summary) for c in results.checks if c.valid is not True
    ]
    report = reports_dir(tmp_path) / results.run_id
    assert (report / "report.html").stat().st_size > 0
    assert (report / "junit.xml").exists()
    assert (report / "history.jsonl").exists()
    # What the app wrote while the scenario ran is kept beside the report.
    assert results.extra["target_logs"]["app"]["file"] == "logs/app.log"
    assert (report / "logs" / "app.log").is_file()
    if name in ("load", "network"):
        # The CPU of every local process over the measured load, per completion.
        assert results.resources is not None
        roles = results.resources["roles"]
        assert {"app", "postgres", "toxiproxy", "harness (generator + clients)"} <= set(roles)
        measured = [role for role in roles.values() if role["cpu_s"] is not None]
        assert all(role["cpu_ms_per_op"] > 0 for role in measured if role["cpu_s"] > 0)
        assert roles["app"]["cpu_s"] > 0
    if name == "security":
        _assert_the_attack_was_made(results)


@pytest.mark.parametrize(
    ("name", "flaw", "caught_by"),
    [
        ("load", "n_plus_one", "slo:queries_per_request"),
        ("delivery", "no_room_auth", "no_leaks"),
        ("dedupe", "no_unique_index", "no_duplicates"),
        ("dedupe", "unscoped_complete", "current_step_alerts"),
        ("network", "no_rejoin", "delivery"),
        ("queue", "no_retry", "queued_completions"),
        ("cache", "stale_cache", "read_your_writes"),
        ("rollback", "emit_before_commit", "no_phantoms"),
        ("rollback", "non_atomic_completion", "rollback_consistency"),
        ("delivery", "id_order_advance", "linearizable"),
        ("queue", "no_backoff", "retry_schedule"),
        ("network", "no_catchup_overlap", "catch_up"),
        ("network", "no_client_dedupe", "exactly_once"),
        ("network", "no_sync", "catch_up"),
        ("cache", "no_cache_fallback", "cache_fallback"),
        ("chaos", "no_replay", "relay_replay"),
        ("chaos", "no_sweep", "killed_job_ends"),
        ("delivery", "ignore_phase_order", "linearizable"),
    ],
)
async def test_a_flaw_makes_its_scenario_fail(
    stack: Stack, name: str, flaw: str, caught_by: str, tmp_path: Path
) -> None:
    params = RunParams(**{**SMALL.to_dict(), "flaws": frozenset({flaw})})
    results = await _run(stack, name, tmp_path, params)
    assert caught_by in _failed(results), [(c.name, c.summary) for c in results.checks]
    assert results.exit_code == 1


SOAK = RunParams(projects=200, rate_per_s=20.0, duration_s=20.0, seed=7, drain_s=10.0)


async def test_a_short_soak_stays_flat_and_plots_every_series(stack: Stack, tmp_path: Path) -> None:
    results = await _run(stack, "soak", tmp_path, SOAK)
    assert results.errors == ()
    growth = next(c for c in results.checks if c.name == "resource_growth")
    assert growth.valid is True, growth.summary
    series = results.extra["soak"]["series"]
    assert set(series) == {"app_rss_mb", "app_fds", "pg_connections", "redis_used_mb"}
    assert all(s["held"] is True for s in series.values())
    html = (reports_dir(tmp_path) / results.run_id / "report.html").read_text(encoding="utf-8")
    assert "Resources over the soak" in html
    for name, judged in series.items():  # one chart per series
        assert f"{name} ({judged['unit']}) over the soak" in html, name


async def test_a_leak_fails_the_soak(stack: Stack, tmp_path: Path) -> None:
    params = RunParams(**{**SOAK.to_dict(), "flaws": frozenset({"memory_leak"})})
    results = await _run(stack, "soak", tmp_path, params)
    assert _failed(results) == {"resource_growth"}, [c.summary for c in results.checks]
    grew = results.extra["soak"]["series"]["app_rss_mb"]
    assert grew["held"] is False


def _assert_the_attack_was_made(results: RunResults) -> None:
    """The security scenario's report says how much was tried, by kind."""
    fuzz = results.extra["fuzz"]
    http, socket = fuzz["http_fuzz"], fuzz["socket"]
    assert http["requests"] >= 50
    assert http["statuses"].get("200", 0) > 0  # not only refusals
    assert fuzz["http_probes"]["requests"] == sum(fuzz["http_probes"]["statuses"].values())
    sent = socket["events_sent_by_kind"]
    for kind in ("subscribe_malformed", "subscribe_foreign", "sync_malformed", "sync_valid"):
        assert sent.get(kind, 0) > 0, kind
    assert sum(socket["bad_connects_by_kind"].values()) >= 10


async def test_security_catches_a_room_join_without_membership(
    stack: Stack, tmp_path: Path
) -> None:
    """Under ``no_room_auth`` the attacker joins the victims' rooms: its join is
    acked ok (socket_auth) and it hears their events (no_leaks); nothing else
    about the attack breaks."""
    params = RunParams(**{**SMALL.to_dict(), "flaws": frozenset({"no_room_auth"})})
    results = await _run(stack, "security", tmp_path, params)
    assert _failed(results) == {"socket_auth", "no_leaks"}, [
        (c.name, c.summary) for c in results.checks
    ]
    fuzz = results.extra["fuzz"]
    joined = {j["args"] for j in fuzz["socket"]["foreign_joins"]}
    assert f"({{'projectId': {fuzz['victim_project']}}},)" in joined
    leaks = next(c for c in results.checks if c.name == "no_leaks")
    assert {e["user_id"] for e in leaks.counterexamples} <= {
        fuzz["attacker_user"],
        fuzz["ghost_user"],
    }
    assert results.exit_code == 1


async def test_each_scenario_starts_on_an_empty_redis(stack: Stack, tmp_path: Path) -> None:
    """What an earlier scenario left in the stack's Redis (a queued job under
    the key the next run's job will use, a cached alert list) never reaches
    the next one: its database is new, and so is its Redis."""
    client = redis.Redis.from_url(stack.redis_direct.url, socket_timeout=10.0)
    try:
        client.set("saq:job:alertbench:complete:17:1", "left by an earlier run")
        results = await _run(stack, "indexes", tmp_path)
        assert results.errors == ()
        assert client.exists("saq:job:alertbench:complete:17:1") == 0
    finally:
        client.close()
