"""The checker role: pure functions of a history (plus final reads) to a verdict.

Every checker has the signature ``(history, final=None, **options) ->
CheckResult`` and answers ``valid`` ``True`` / ``False`` / ``"unknown"``
(the history lacks what it needs) with figures, counterexamples and, where it
measures an SLO metric, ``measurements``. They are composed by name with
:func:`run_checks` and :func:`merge_validity`.

======================  =================================================================
name                    verifies (measures)
======================  =================================================================
no_duplicates           never two ACTIVE alerts per project step, in every ``alerts``
                        snapshot and the final read (``duplication_rate``)
delivery                every committed alert reached every entitled client: lost,
                        duplicated, reordered, late (``delivery_rate``)
no_phantoms             no alert received that was never committed
no_leaks                no alert to another user, no event of a foreign project, on
                        pushed events, ``sync`` answers and HTTP reads
queries_per_request     pg_stat_statements delta / ok requests (``queries_per_request``)
generation_latency      request -> commit from the intended start (``generation_p99_ms``)
delivery_latency        commit -> receipt (``delivery_p99_ms``)
reconnection            heal -> client back (``reconnection_p99_ms``)
linearizable            per project, completions form one chain in workflow order; a 409
                        only when stale (against the seeded workflow and final trackers)
right_alert             each alert for a reached step, one per step, assigned by the
                        seed's roles
exactly_once            no alert surfaced twice to a client's application, by any path
catch_up                after a reconnect, everything committed meanwhile (even out of id
                        order) was there when the client said it had caught up
monotonic_reads         no user reads an older alert list after a newer one
retry_schedule          queued retries follow the backoff; jobs end once
======================  =================================================================

:mod:`harness.checks.catalog` says in one line what each check judges
(``alertbench list --checks``).
"""

from harness.checks.catch_up import catch_up
from harness.checks.delivery import delivery
from harness.checks.duplicates import no_duplicates
from harness.checks.exactly_once import exactly_once
from harness.checks.latency import delivery_latency, generation_latency, reconnection
from harness.checks.leaks import no_leaks
from harness.checks.monotonic import monotonic_reads
from harness.checks.phantoms import no_phantoms
from harness.checks.queries import queries_per_request
from harness.checks.registry import CHECKERS, Checker, collect_measurements, register, run_checks
from harness.checks.result import CheckResult, FinalState, Validity, merge_validity
from harness.checks.retries import retry_schedule
from harness.checks.workflow import linearizable, right_alert

__all__ = [
    "CHECKERS",
    "CheckResult",
    "Checker",
    "FinalState",
    "Validity",
    "catch_up",
    "collect_measurements",
    "delivery",
    "delivery_latency",
    "exactly_once",
    "generation_latency",
    "linearizable",
    "merge_validity",
    "monotonic_reads",
    "no_duplicates",
    "no_leaks",
    "no_phantoms",
    "queries_per_request",
    "reconnection",
    "register",
    "retry_schedule",
    "right_alert",
    "run_checks",
]
