"""Measurements: HdrHistogram latencies, counters and server-side query counts.

- :class:`LatencyRecorder`: latencies in ms (1 µs .. 60 s, 3 significant
  digits), raw and coordinated-omission-corrected recording, percentiles,
  merge, and HdrHistogram's compressed base64 encoding for ``results.json``.
- :class:`Counters`: named integer counters.
- :func:`diff_pg_stat_statements`: per-statement deltas between two
  ``pg_stat_statements`` snapshots and queries per request.
"""

from harness.metrics.counters import Counters
from harness.metrics.latency import (
    HIGHEST_MS,
    LOWEST_MS,
    SIGNIFICANT_DIGITS,
    STANDARD_PERCENTILES,
    LatencyRecorder,
    LatencySummary,
)
from harness.metrics.pgstat import (
    DEFAULT_EXCLUDE,
    InvalidSnapshotError,
    PgStatDiff,
    QueryDelta,
    diff_pg_stat_statements,
)

__all__ = [
    "DEFAULT_EXCLUDE",
    "HIGHEST_MS",
    "LOWEST_MS",
    "SIGNIFICANT_DIGITS",
    "STANDARD_PERCENTILES",
    "Counters",
    "InvalidSnapshotError",
    "LatencyRecorder",
    "LatencySummary",
    "PgStatDiff",
    "QueryDelta",
    "diff_pg_stat_statements",
]
