"""Scale the load out: shard the subscribers and the generator over processes and machines.

- :func:`run_sharded` (:mod:`harness.scale.conductor`): the load scenario over
  ``--workers N`` shard processes on this machine, or over Locust's workers
  (``alertbench locust``), kept in step, their histories merged, judged as one;
- :mod:`harness.scale.shard`: one shard (a process of its own);
- :mod:`harness.scale.merge`: one history from many, one generator report;
- ``harness/scale/locustfile.py``: Locust's side (loaded by Locust, not imported here).
"""

from harness.scale.conductor import LocustLink, ProcessLink, ShardError, run_sharded
from harness.scale.merge import ShardHistory, merge_generators, merge_histories
from harness.scale.plan import ShardPlan, shard_of

__all__ = [
    "LocustLink",
    "ProcessLink",
    "ShardError",
    "ShardHistory",
    "ShardPlan",
    "merge_generators",
    "merge_histories",
    "run_sharded",
    "shard_of",
]
