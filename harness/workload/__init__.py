"""The generator role: deterministic schedules and the open-loop driver.

- Schedules (:func:`constant_rate`, :func:`ramp`, :func:`poisson`,
  :meth:`Schedule.then`): the intended start offset of every operation,
  reproducible from the arguments and the seed.
- :func:`run_open_loop`: launches each operation at its intended time without
  waiting for earlier ones, records it in the history, keeps corrected and raw
  latency histograms and returns a :class:`GeneratorReport` (planned vs
  achieved rate, event-loop lag, validity of the run).
- :mod:`harness.workload.testing`: a virtual-clock event loop for tests.
"""

from harness.workload.driver import (
    DEFAULT_LAG_THRESHOLD_MS,
    MIN_RATE_RATIO,
    GeneratorReport,
    OpenLoopLatency,
    OpFailed,
    run_open_loop,
)
from harness.workload.schedule import (
    MAX_OPERATIONS,
    InvalidScheduleError,
    Schedule,
    constant_rate,
    poisson,
    ramp,
)

__all__ = [
    "DEFAULT_LAG_THRESHOLD_MS",
    "MAX_OPERATIONS",
    "MIN_RATE_RATIO",
    "GeneratorReport",
    "InvalidScheduleError",
    "OpFailed",
    "OpenLoopLatency",
    "Schedule",
    "constant_rate",
    "poisson",
    "ramp",
    "run_open_loop",
]
