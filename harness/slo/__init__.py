"""Service-level objectives: specs as data (TOML), validated when read, judged per run.

    slos = load_slos("slo.toml", scenario={"generation_p99_ms": {"target": 200}},
                     overrides=["delivery_rate=99.9"])
    verdicts = evaluate(slos, {"generation_p99_ms": 42.0, "delivery_rate": 100.0})

Defaults (``defaults.toml``): ``generation_p99_ms < 100``, ``delivery_rate >
99`` (%), ``queries_per_request < 10``, ``duplication_rate <= 0`` (%),
``reconnection_p99_ms < 5000``. The measurement names match the
``measurements`` of ``harness.checks`` results (``collect_measurements``).
"""

from harness.slo.evaluate import SloStatus, SloVerdict, evaluate, judge
from harness.slo.spec import (
    KNOWN_KEYS,
    Comparison,
    SloSpec,
    apply_overrides,
    default_slos,
    load_slos,
    merge_slos,
    only_slos,
    parse_slo_toml,
)

__all__ = [
    "KNOWN_KEYS",
    "Comparison",
    "SloSpec",
    "SloStatus",
    "SloVerdict",
    "apply_overrides",
    "default_slos",
    "evaluate",
    "judge",
    "load_slos",
    "merge_slos",
    "only_slos",
    "parse_slo_toml",
]
