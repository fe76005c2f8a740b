"""What each check judges, in one line: for ``alertbench list --checks``,
the README's invariants table and the report.

History checkers (:data:`harness.checks.CHECKERS`) are pure functions of a
history and the final reads; a scenario's own checks are verdicts it
reaches while it runs (a forced race, a table read at the end).
"""

from __future__ import annotations

from typing import Final

__all__ = ["INVARIANTS", "SCENARIO_CHECKS"]

INVARIANTS: Final[dict[str, str]] = {
    # -- history checkers -------------------------------------------------------
    "linearizable": "per project, the successful completions form one chain in workflow order"
    " from the seeded start to the final tracker; at most one success per step; a 409 only"
    " when stale, and the item it names was current then",
    "right_alert": "every step a completion entered has exactly one alert, for the next active"
    " step in workflow order, assigned to the member with the step's responsible role (judged"
    " against the seeded data); no alert for a step never reached",
    "no_duplicates": "never two ACTIVE alerts for one project step, in any snapshot or at the end",
    "delivery": "every committed alert reached every connected assignee (after a reconnect for"
    " one that was away); no live push twice",
    "exactly_once": "no client surfaced an alert to its application twice, whatever its path"
    " (live, sync catch-up, or both)",
    "no_phantoms": "no event for an alert that never committed",
    "no_leaks": "no alert or project event reached a user it was not meant for: pushed events,"
    " sync answers and HTTP reads alike",
    "catch_up": "after a reconnect, the client had every alert committed for it during the"
    " outage by the time it said it had caught up, including ones that committed out of id order",
    "monotonic_reads": "a user never read an older alert list after a newer one",
    "retry_schedule": "queued retries back off as configured; each job ends complete once or"
    " dead-lettered after its attempts",
    "queries_per_request": "statements per request on the server (pg_stat_statements), per phase",
    "generation_latency": "request latency from the intended start (open loop)",
    "delivery_latency": "commit (or request) -> receipt latency",
    "reconnection": "fault healed -> client back (and caught up)",
    # -- scenarios' own checks ----------------------------------------------------
    "current_step_alerts": "every project ends with exactly one ACTIVE alert, for its current step",
    "race_forced": "every round of the race had at least two writers held uncommitted together",
    "racing_requests_answered": "every racing request got an answer",
    "late_commit_forced": "an alert took its id before another and committed after it, while its"
    " user was disconnected",
    "project_rooms": "every project-room event reached every subscribed member once; foreign"
    " rooms refused",
    "rollback_consistency": "the database holds exactly the committed work: nothing of a"
    " rolled-back completion",
    "queued_completions": "every queued completion ended complete, each project moved one step,"
    " no dead letters",
    "rollback_at_each_stage": "with the Postgres hop cut while a completion waits at each stage of"
    " its transaction, the project is left exactly as before and the completion commits when sent"
    " again",
    "read_your_writes": "a read right after a completion's response shows it, through the cache",
    "cache_fallback": "with Redis out of reach, a user's alert list is still answered, right,"
    " from Postgres",
    "relay_replay": "an alert that committed while the relay's LISTEN connection was down reached"
    " its connected assignee live once the relay was back",
    "killed_job_ends": "a queued job whose worker was SIGKILLed mid-job still ends complete"
    " (a sweep runs it again)",
    "index_use": "the hot queries use an index, never a sequential scan of workflow_alerts",
    "http_no_server_errors": "fuzzed HTTP requests (schemathesis, the contract's OpenAPI"
    " document) never get a 5xx or no answer",
    "http_schema_conformance": "every answer's status, media type and body match the contract's"
    " OpenAPI document",
    "http_malformed_rejected": "malformed HTTP input gets a 4xx",
    "http_auth": "bad, tampered and expired tokens get 401; another user's data 403",
    "socket_auth": "bad tokens cannot connect; a non-member cannot join a project's room; sync"
    " returns only the caller's alerts",
    "socket_robustness": "malformed, oversized and unknown Socket.IO events are acked or refused,"
    " and only protocol abuse closes the sender",
    "bystanders_connected": "no other client is disconnected while an attacker fuzzes",
    "server_alive": "the target still answers /healthz after the attack",
    "resource_growth": "after a warm-up, app memory and file descriptors, Postgres connections"
    " and Redis memory grow no faster than their bounds",
}
"""Check name -> the invariant (or measurement) it judges."""

SCENARIO_CHECKS: Final[dict[str, tuple[str, ...]]] = {
    "dedupe": ("current_step_alerts", "race_forced", "racing_requests_answered"),
    "network": ("late_commit_forced",),
    "delivery": ("project_rooms",),
    "rollback": ("rollback_consistency", "rollback_at_each_stage"),
    "queue": ("queued_completions",),
    "cache": ("read_your_writes", "cache_fallback"),
    "indexes": ("index_use",),
    "chaos": ("relay_replay", "killed_job_ends"),
    "soak": ("resource_growth",),
    "security": (
        "http_no_server_errors",
        "http_schema_conformance",
        "http_malformed_rejected",
        "http_auth",
        "socket_auth",
        "socket_robustness",
        "bystanders_connected",
        "server_alive",
    ),
}
"""Scenario -> the checks it reaches itself (besides its history checkers)."""
