"""SLO specs: read from TOML, validated eagerly, merged in layers, overridden from the CLI.

Layers, later wins key by key: the shipped ``defaults.toml``, the scenario's
own table, the user's file, then ``--slo-override`` arguments
(:func:`load_slos` applies them in that order). Every error is a
:class:`~harness.errors.ConfigError` naming the source, the SLO and the key:

    slo.toml: [slo.delivery_rate] target: expected a number, got "high"
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from harness.errors import ConfigError

__all__ = [
    "KNOWN_KEYS",
    "Comparison",
    "SloSpec",
    "apply_overrides",
    "default_slos",
    "load_slos",
    "merge_slos",
    "parse_slo_toml",
]

Comparison = Literal["<", "<=", ">", ">="]
_COMPARISONS: Final = get_args(Comparison)
KNOWN_KEYS: Final = ("description", "enabled", "metric", "op", "target", "unit")
"""The keys an ``[slo.<name>]`` table may hold."""
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: What the checkers measure (harness.checks): an SLO's metric must be one of
#: these, or the run could only answer "unknown" after spending its time.
FIXED_MEASUREMENTS: Final = ("delivery_rate", "duplication_rate", "queries_per_request")
_PERCENTILE_MEASUREMENT = re.compile(r"^(generation|delivery|reconnection)_p\d+_ms$")
MEASUREMENTS_HELP: Final = (
    ", ".join(FIXED_MEASUREMENTS) + ", <generation|delivery|reconnection>_p<percentile>_ms"
)


def is_measurement(metric: str) -> bool:
    """Whether a checker produces ``metric`` (e.g. ``delivery_p99_ms``)."""
    return metric in FIXED_MEASUREMENTS or bool(_PERCENTILE_MEASUREMENT.match(metric))


@dataclass(frozen=True, slots=True, kw_only=True)
class SloSpec:
    """One objective: ``measurement <op> target``."""

    name: str
    """Identifier, e.g. ``generation_p99_ms`` (``--slo-override`` uses it)."""
    metric: str
    """The measurement judged (a key of the measurements given to ``evaluate``)."""
    op: Comparison
    """How the measurement must compare with the target."""
    target: float
    """The threshold, in ``unit``."""
    unit: str = ""
    """For display: ``ms``, ``%``..."""
    description: str = ""
    """For display."""
    enabled: bool = True
    """Disabled SLOs are not evaluated."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in ("name", *KNOWN_KEYS)}


def _shown(value: Any) -> str:
    # JSON spelling, as in the file: "high" in double quotes, true, 3.5.
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _check_value(where: str, key: str, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where} {key}", f"expected {expected}, got {_shown(value)}")

    if key == "target":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        if not math.isfinite(value):
            raise bad("a finite number")
        return float(value)
    if key == "op":
        if value not in _COMPARISONS:
            raise bad("one of " + ", ".join(f'"{c}"' for c in _COMPARISONS))
        return value
    if key == "enabled":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if not isinstance(value, str):
        raise bad("a string")
    if key == "metric" and not value:
        raise bad("a non-empty string")
    return value


def merge_slos(
    base: Mapping[str, SloSpec], table: Mapping[str, Any], *, source: str
) -> dict[str, SloSpec]:
    """``base`` updated by an ``{name: {key: value}}`` table (the ``[slo]`` part of a file).

    Keys not given keep their base value; a new SLO needs ``op`` and ``target``.
    """
    out = dict(base)
    for name, body in table.items():
        where = f"{source}: [slo.{name}]"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                where, "SLO names are lower-case letters, digits and '_', starting with a letter"
            )
        if not isinstance(body, Mapping):
            raise ConfigError(where, f"expected a table, got {_shown(body)}")
        unknown = sorted(set(body) - set(KNOWN_KEYS))
        if unknown:
            raise ConfigError(
                f"{where} {unknown[0]}", f"unknown key; known keys: {', '.join(KNOWN_KEYS)}"
            )
        values = {key: _check_value(where, key, value) for key, value in body.items()}
        if name not in out:
            for required in ("op", "target"):
                if required not in values:
                    raise ConfigError(f"{where} {required}", "required for a new SLO")
        metric = values.get("metric", out[name].metric if name in out else name)
        if not is_measurement(metric):
            close = difflib.get_close_matches(name, list(out), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                where,
                f"no checker measures {metric!r}, so this SLO could never be judged{hint}"
                f" (known SLOs: {', '.join(out) or 'none'}; measurements: {MEASUREMENTS_HELP})",
            )
        if name in out:
            out[name] = replace(out[name], **values)
            continue
        out[name] = SloSpec(
            name=name,
            metric=values.get("metric", name),
            op=cast(Comparison, values["op"]),
            target=values["target"],
            unit=values.get("unit", ""),
            description=values.get("description", ""),
            enabled=values.get("enabled", True),
        )
    return out


def parse_slo_toml(
    text: str, *, source: str = "slo.toml", base: Mapping[str, SloSpec] | None = None
) -> dict[str, SloSpec]:
    """Parse and validate an SLO file's text, merged over ``base`` (default: none)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"slo"})
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}", "unknown top-level key; known: slo")
    table = data.get("slo", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: slo", f"expected a table, got {_shown(table)}")
    return merge_slos(base or {}, table, source=source)


def default_slos() -> dict[str, SloSpec]:
    """The shipped defaults (``harness/slo/defaults.toml``)."""
    text = resources.files("harness.slo").joinpath("defaults.toml").read_text(encoding="utf-8")
    return parse_slo_toml(text, source="defaults.toml")


def only_slos(*kept: str) -> dict[str, dict[str, Any]]:
    """Scenario overrides that switch off every default SLO except ``kept``
    (a correctness scenario has no sustained load to judge latency on)."""
    defaults = default_slos()
    unknown = sorted(set(kept) - set(defaults))
    if unknown:
        raise ValueError(f"unknown SLO(s) {', '.join(unknown)}; known: {', '.join(defaults)}")
    return {name: {"enabled": False} for name in defaults if name not in kept}


def _override_value(raw: str) -> Any:
    # A TOML value when it parses (50, 99.5, true, "x"), else the bare text.
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(
    slos: Mapping[str, SloSpec], overrides: Sequence[str], *, source: str = "--slo-override"
) -> dict[str, SloSpec]:
    """Apply ``NAME=VALUE`` (the target) or ``NAME.KEY=VALUE`` overrides to existing SLOs."""
    out = dict(slos)
    for override in overrides:
        lhs, sep, raw = override.partition("=")
        name, dot, key = lhs.strip().partition(".")
        if not sep or not name or (dot and not key):
            raise ConfigError(f"{source} {override!r}", "expected NAME=VALUE or NAME.KEY=VALUE")
        if name not in out:
            raise ConfigError(
                f"{source} {override!r}", f"unknown SLO {name!r}; known: {', '.join(sorted(out))}"
            )
        out = merge_slos(
            out, {name: {key or "target": _override_value(raw.strip())}}, source=source
        )
    return out


def load_slos(
    path: str | os.PathLike[str] | None = None,
    *,
    scenario: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, SloSpec]:
    """Defaults, then the scenario's table, then the file at ``path``, then CLI overrides."""
    slos = default_slos()
    if scenario:
        slos = merge_slos(slos, scenario, source="scenario")
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(file), f"cannot read: {exc.strerror or exc}") from None
        slos = parse_slo_toml(text, source=str(file), base=slos)
    return apply_overrides(slos, overrides)
