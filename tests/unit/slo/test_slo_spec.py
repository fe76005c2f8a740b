"""SLO files: defaults, layering, overrides and every bad-file error; evaluation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.slo import (
    KNOWN_KEYS,
    SloVerdict,
    apply_overrides,
    default_slos,
    evaluate,
    load_slos,
    only_slos,
    parse_slo_toml,
)


def test_defaults_are_the_design_targets() -> None:
    slos = default_slos()
    assert {name: (s.op, s.target, s.unit) for name, s in slos.items()} == {
        "generation_p99_ms": ("<", 100.0, "ms"),
        "delivery_rate": (">", 99.0, "%"),
        "queries_per_request": ("<", 10.0, "queries"),
        "duplication_rate": ("<=", 0.0, "%"),
        "reconnection_p99_ms": ("<", 5000.0, "ms"),
    }
    assert all(s.metric == name and s.enabled and s.description for name, s in slos.items())


def test_a_file_changes_only_the_keys_it_names_and_may_add_slos(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(
        "[slo.generation_p99_ms]\ntarget = 250\n\n"
        "[slo.reconnection_p99_ms]\nenabled = false\n\n"
        '[slo.delivery_p99_ms]\nop = "<"\ntarget = 500\nunit = "ms"\n'
    )
    slos = load_slos(path)
    assert slos["generation_p99_ms"].target == 250.0
    assert slos["generation_p99_ms"].op == "<"  # kept from the defaults
    assert slos["reconnection_p99_ms"].enabled is False
    assert slos["delivery_p99_ms"].metric == "delivery_p99_ms"


def test_layers_apply_in_order_defaults_scenario_file_cli(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[slo.generation_p99_ms]\ntarget = 300\n")
    scenario = {"generation_p99_ms": {"target": 200.0}, "delivery_rate": {"target": 95.0}}
    slos = load_slos(path, scenario=scenario, overrides=["delivery_rate=99.9"])
    assert slos["generation_p99_ms"].target == 300.0  # file beats scenario
    assert slos["delivery_rate"].target == 99.9  # CLI beats scenario
    assert load_slos(scenario=scenario)["generation_p99_ms"].target == 200.0


def test_overrides_set_the_target_or_a_named_key() -> None:
    slos = apply_overrides(
        default_slos(),
        [
            "generation_p99_ms=50",
            "queries_per_request.op=<=",
            'duplication_rate.unit="percent"',
            "reconnection_p99_ms.enabled=false",
        ],
    )
    assert slos["generation_p99_ms"].target == 50.0
    assert slos["queries_per_request"].op == "<="
    assert slos["duplication_rate"].unit == "percent"
    assert slos["reconnection_p99_ms"].enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[slo.delivery_rate]\ntarget = "high"\n',
            'slo.toml: [slo.delivery_rate] target: expected a number, got "high"',
        ),
        (
            "[slo.delivery_rate]\ntarget = true\n",
            "slo.toml: [slo.delivery_rate] target: expected a number, got true",
        ),
        (
            "[slo.delivery_rate]\ntarget = nan\n",
            "slo.toml: [slo.delivery_rate] target: expected a finite number, got NaN",
        ),
        (
            '[slo.delivery_rate]\nop = "=="\n',
            'slo.toml: [slo.delivery_rate] op: expected one of "<", "<=", ">", ">=", got "=="',
        ),
        (
            '[slo.delivery_rate]\nenabled = "yes"\n',
            'slo.toml: [slo.delivery_rate] enabled: expected true or false, got "yes"',
        ),
        (
            "[slo.delivery_rate]\nunit = 5\n",
            "slo.toml: [slo.delivery_rate] unit: expected a string, got 5",
        ),
        (
            '[slo.delivery_rate]\nmetric = ""\n',
            'slo.toml: [slo.delivery_rate] metric: expected a non-empty string, got ""',
        ),
        (
            "[slo.delivery_rate]\ncolour = 1\n",
            "slo.toml: [slo.delivery_rate] colour: unknown key; known keys: "
            + ", ".join(KNOWN_KEYS),
        ),
        (
            "[slo.new_thing]\ntarget = 1\n",
            "slo.toml: [slo.new_thing] op: required for a new SLO",
        ),
        (
            '[slo.new_thing]\nop = "<"\n',
            "slo.toml: [slo.new_thing] target: required for a new SLO",
        ),
        (
            "[slo]\ndelivery_rate = 5\n",
            "slo.toml: [slo.delivery_rate]: expected a table, got 5",
        ),
        (
            '[slo.Bad-Name]\nop = "<"\n',
            "slo.toml: [slo.Bad-Name]: SLO names are lower-case",
        ),
        ("slo = 3\n", "slo.toml: slo: expected a table, got 3"),
        ("[slos.x]\ntarget = 1\n", "slo.toml: slos: unknown top-level key; known: slo"),
        ("[slo.delivery_rate\n", "slo.toml: invalid TOML: "),
    ],
)
def test_every_bad_file_names_the_bad_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_slo_toml(text, source="slo.toml", base=default_slos())
    assert str(error.value).startswith(message)


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("missing.toml: cannot read")):
        load_slos(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("generation_p99_ms", "expected NAME=VALUE or NAME.KEY=VALUE"),
        ("=5", "expected NAME=VALUE or NAME.KEY=VALUE"),
        ("generation_p99_ms.=5", "expected NAME=VALUE or NAME.KEY=VALUE"),
        ("nope=5", "unknown SLO 'nope'; known: delivery_rate, duplication_rate"),
        (
            "generation_p99_ms=fast",
            '--slo-override: [slo.generation_p99_ms] target: expected a number, got "fast"',
        ),
        ("generation_p99_ms.speed=1", "speed: unknown key"),
    ],
)
def test_bad_overrides_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(default_slos(), [override])


def test_evaluation_gives_pass_fail_unknown_and_margins() -> None:
    slos = apply_overrides(default_slos(), ["reconnection_p99_ms.enabled=false"])
    verdicts = {
        v.name: v
        for v in evaluate(
            slos,
            {
                "generation_p99_ms": 80.0,
                "delivery_rate": 97.0,
                "duplication_rate": 0.0,
                "queries_per_request": float("nan"),
            },
        )
    }
    assert set(verdicts) == {
        "generation_p99_ms",
        "delivery_rate",
        "duplication_rate",
        "queries_per_request",
    }
    gen = verdicts["generation_p99_ms"]
    assert (gen.status, gen.margin, gen.margin_pct) == ("pass", 20.0, 20.0)
    rate = verdicts["delivery_rate"]
    assert (rate.status, rate.margin) == ("fail", -2.0)
    dup = verdicts["duplication_rate"]
    assert (dup.status, dup.margin, dup.margin_pct) == ("pass", 0.0, None)
    qpr = verdicts["queries_per_request"]
    assert (qpr.status, qpr.measured, qpr.margin) == ("unknown", None, None)
    assert SloVerdict.from_dict(gen.to_dict()) == gen


def test_a_strict_comparison_fails_at_the_target() -> None:
    (verdict,) = evaluate(
        {"generation_p99_ms": default_slos()["generation_p99_ms"]}, {"generation_p99_ms": 100.0}
    )
    assert verdict.status == "fail"
    assert verdict.margin == 0.0


def test_only_slos_switches_off_every_default_but_the_kept_ones() -> None:
    overrides = only_slos("duplication_rate")
    assert set(overrides) == set(default_slos()) - {"duplication_rate"}
    assert all(o == {"enabled": False} for o in overrides.values())
    merged = load_slos(None, scenario=overrides)
    assert {name for name, spec in merged.items() if spec.enabled} == {"duplication_rate"}
    with pytest.raises(ValueError, match="unknown SLO"):
        only_slos("latency_p42")


def test_a_misspelt_slo_is_refused_before_anything_runs() -> None:
    text = '[slo.generation_p99]\nop = "<"\ntarget = 50\n'
    with pytest.raises(ConfigError) as caught:
        parse_slo_toml(text, source="my.toml", base=default_slos())
    message = str(caught.value)
    assert message.startswith("my.toml: [slo.generation_p99]: no checker measures")
    assert "did you mean 'generation_p99_ms'?" in message


def test_a_new_slo_on_a_real_measurement_is_accepted() -> None:
    text = '[slo.fast_delivery]\nmetric = "delivery_p50_ms"\nop = "<"\ntarget = 5\n'
    slos = parse_slo_toml(text, base=default_slos())
    assert slos["fast_delivery"].metric == "delivery_p50_ms"
