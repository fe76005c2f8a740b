"""``python -m reference_impl`` argument handling (no services needed)."""

from __future__ import annotations

import pytest

from reference_impl.__main__ import build_parser, config_from_args, main
from reference_impl.flaws import Flaw

PG = "postgresql://postgres@127.0.0.1:5432/db"
REDIS = "redis://127.0.0.1:6379/0"


def test_flags_become_a_validated_config() -> None:
    args = build_parser().parse_args(
        [
            "--pg-dsn",
            PG,
            "--redis-url",
            REDIS,
            "--port",
            "9001",
            "--flaw",
            "n_plus_one",
            "--flaw",
            "stale_cache",
            "--no-worker",
        ]
    )
    config = config_from_args(args)
    assert config.port == 9001
    assert config.flaws == {Flaw.N_PLUS_ONE, Flaw.STALE_CACHE}
    assert config.run_worker is False


def test_an_unknown_flaw_exits_2_listing_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--pg-dsn", PG, "--redis-url", REDIS, "--flaw", "nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown flaw 'nope'" in err
    assert "n_plus_one" in err


def test_a_missing_dsn_says_how_to_give_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERTBENCH_PG_DSN", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["--redis-url", REDIS])
    assert info.value.code == 2
    assert "--pg-dsn" in capsys.readouterr().err


def test_a_bad_port_is_an_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--pg-dsn", PG, "--redis-url", REDIS, "--port", "99999"])
    assert "port:" in capsys.readouterr().err
