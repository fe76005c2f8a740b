"""The nemesis role: network faults through Toxiproxy, real or embedded.

- ``EmbeddedToxiproxy`` / ``ToxiproxyThread`` / ``serve``: an asyncio server
  speaking Toxiproxy's v2 HTTP API, for laptops without Docker or Go.
- ``ToxiproxyClient``: an async client for that API (real or embedded server).
- Fault packages (``partition``, ``latency``, ``reset_peers``...): a fault, its
  heal and its report label, as async context managers or on a schedule.
"""

from harness.faults.api import VERSION
from harness.faults.client import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    ProxyInfo,
    ToxicInfo,
    ToxiproxyClient,
    ToxiproxyError,
)
from harness.faults.packages import (
    At,
    Fault,
    FaultEvent,
    InvalidFaultError,
    bandwidth,
    down,
    latency,
    limit_data,
    packet_loss,
    partition,
    reset_peers,
    run_schedule,
    slicer,
    slow_close,
    timeout,
)
from harness.faults.server import EmbeddedToxiproxy, ToxiproxyThread, serve
from harness.faults.toxics import TOXIC_TYPES

__all__ = [
    "TOXIC_TYPES",
    "VERSION",
    "At",
    "BadRequestError",
    "ConflictError",
    "EmbeddedToxiproxy",
    "Fault",
    "FaultEvent",
    "InvalidFaultError",
    "NotFoundError",
    "ProxyInfo",
    "ToxicInfo",
    "ToxiproxyClient",
    "ToxiproxyError",
    "ToxiproxyThread",
    "bandwidth",
    "down",
    "latency",
    "limit_data",
    "packet_loss",
    "partition",
    "reset_peers",
    "run_schedule",
    "serve",
    "slicer",
    "slow_close",
    "timeout",
]
