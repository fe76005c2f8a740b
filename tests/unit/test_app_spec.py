"""How the harness launches the app's processes, and spreads HTTP over them."""

from __future__ import annotations

import pytest

from harness.clients import AppHttp
from harness.errors import ConfigError
from harness.stack.app import AppSpec, _argv


def _flags(spec: AppSpec, index: int) -> set[str]:
    argv = _argv(spec, index, "postgresql://u@127.0.0.1:1/d", "redis://127.0.0.1:2/0", 3)
    return {a for a in argv if a in {"--socketio-redis", "--no-relay"}}


def test_one_process_runs_the_relay_and_no_redis_manager() -> None:
    assert _flags(AppSpec(), 0) == set()


def test_redis_fanout_one_relay_and_emits_through_redis() -> None:
    spec = AppSpec(processes=2, fanout="redis")
    assert _flags(spec, 0) == {"--socketio-redis"}
    assert _flags(spec, 1) == {"--socketio-redis", "--no-relay"}


def test_listen_fanout_every_process_relays_to_its_own_clients() -> None:
    spec = AppSpec(processes=3, fanout="listen")
    assert [_flags(spec, i) for i in range(3)] == [set(), set(), set()]


def test_an_unknown_fanout_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="fanout: must be one of redis, listen"):
        AppSpec(processes=2, fanout="kafka")


def test_requests_take_turns_over_the_app_processes() -> None:
    http = AppHttp(["http://127.0.0.1:1/", "http://127.0.0.1:2"])
    assert http.base_urls == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert [next(http._turn) for _ in range(4)] == [
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
    ]
    with pytest.raises(ValueError, match="at least one URL"):
        AppHttp([])


def test_a_secret_that_starts_with_a_dash_reaches_the_reference_intact() -> None:
    # token_urlsafe() starts with "-" one time in 64: argparse took it for an
    # option, and the app did not start.
    from reference_impl.__main__ import build_parser

    secret = "-" + "x" * 40
    argv = _argv(AppSpec(token_secret=secret), 0, "postgresql://u@127.0.0.1:1/d", "redis://r", 3)
    assert argv[:3] == [argv[0], "-m", "reference_impl"]
    assert build_parser().parse_args(argv[3:]).token_secret == secret
