"""Prometheus metrics of the reference pipeline, in their own registry.

Names follow the seed's monitoring list: alert generation latency, queries
per request, duplicates prevented, queue retries and dead letters.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Up to 10 s: a full collection of a big heap on a busy machine took over 1 s
# (a CI run), and a pause above the last bucket has no bound to report.
_GC_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_QUERY_BUCKETS = (1, 2, 3, 5, 7, 10, 15, 25, 50, 100, 300, 1000, 3000, 10000, 40000)


class Metrics:
    """All metrics of one process; ``render()`` gives the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.alert_generation_seconds = Histogram(
            "alertbench_alert_generation_seconds",
            "Request -> alerts committed, per operation (generate | complete).",
            ["operation"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.db_queries_per_request = Histogram(
            "alertbench_db_queries_per_request",
            "Statements sent to Postgres per request (client-side count), per operation.",
            ["operation"],
            buckets=_QUERY_BUCKETS,
            registry=self.registry,
        )
        self.alerts_created = Counter(
            "alertbench_alerts_created",
            "Alerts inserted, per operation.",
            ["operation"],
            registry=self.registry,
        )
        self.duplicates_prevented = Counter(
            "alertbench_alert_duplicates_prevented",
            "Alert inserts skipped because the step already had an ACTIVE alert.",
            registry=self.registry,
        )
        self.completions = Counter(
            "alertbench_completions",
            "Completion attempts by outcome (ok | stale | not_found | forbidden | error).",
            ["outcome"],
            registry=self.registry,
        )
        self.queue_jobs = Counter(
            "alertbench_queue_jobs",
            "Queue job attempts by outcome (complete | retried | failed | aborted).",
            ["outcome"],
            registry=self.registry,
        )
        self.queue_retries = Counter(
            "alertbench_queue_retries",
            "Queue job attempts that failed and were scheduled again.",
            registry=self.registry,
        )
        self.queue_dead_letters = Counter(
            "alertbench_queue_dead_letters",
            "Queue jobs that exhausted their attempts (dead-letter state).",
            registry=self.registry,
        )
        self.cache_requests = Counter(
            "alertbench_cache_requests",
            "Per-user alert list reads by cache result (hit | miss | bypass | error).",
            ["result"],
            registry=self.registry,
        )
        self.cache_invalidation_errors = Counter(
            "alertbench_cache_invalidation_errors",
            "Invalidations that could not reach Redis (entries then expire by TTL).",
            registry=self.registry,
        )

        self.relay_events = Counter(
            "alertbench_relay_events",
            "Relay activity: alerts emitted from notifications (live) or by replay after a "
            "reconnect (replay), and LISTEN connections established (connect).",
            ["kind"],
            registry=self.registry,
        )

    def watch_gc(self) -> Callable[[], None]:
        """Time every garbage collection of this process (a full one stops the
        event loop: with thousands of Socket.IO sessions, for 100+ ms) into
        ``alertbench_gc_pause_seconds{generation}``. Returns the function that
        stops watching."""
        pauses = Histogram(
            "alertbench_gc_pause_seconds",
            "Time the garbage collector stopped the process, per generation collected.",
            ["generation"],
            buckets=_GC_BUCKETS_S,
            registry=self.registry,
        )
        started: list[float] = []

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                pauses.labels(str(info.get("generation", "?"))).observe(
                    time.perf_counter() - started.pop()
                )

        gc.callbacks.append(callback)

        def stop() -> None:
            if callback in gc.callbacks:
                gc.callbacks.remove(callback)

        return stop

    def observe_relay(self, kind: str) -> None:
        """Count one relay event (``live`` | ``replay`` | ``connect``)."""
        self.relay_events.labels(kind).inc()

    def render(self) -> bytes:
        """Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
