"""alertbench: benchmark and break real-time alert pipelines.

The harness is organised in Jepsen's roles: ``stack`` (the "db" role: start and
stop Postgres, Redis, Toxiproxy and the app), ``faults`` (the nemesis),
``clients``, ``workload`` (the generator), ``history``, ``checks`` (the
checker), ``metrics``, ``slo`` and ``report``.
"""

from harness.errors import AlertbenchError, ConfigError, StackStartError, StackUnavailable

__all__ = ["AlertbenchError", "ConfigError", "StackStartError", "StackUnavailable", "__version__"]

__version__ = "0.1.0.dev0"
