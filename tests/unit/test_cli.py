"""The CLI's surface: help, and clear errors with exit code 2 for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import EXIT_HARNESS, main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "stack" in out
    assert "usage: alertbench" in out


def test_stack_help_lists_its_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["stack", "--help"])
    out = capsys.readouterr().out
    assert "up" in out
    assert "reap" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["stack", "up", "--stack", "podman"], "invalid choice: 'podman'"),
        (["stack", "up", "--startup-timeout", "-3"], "must be positive"),
        (["stack", "up", "--startup-timeout", "soon"], "'soon' is not a number"),
        (["launch"], "invalid choice: 'launch'"),
        ([], "required"),
    ],
)
def test_bad_flags_exit_2_naming_the_problem(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == EXIT_HARNESS
    assert fragment in capsys.readouterr().err


def test_bad_environment_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTBENCH_REDIS_URL", "memcached://127.0.0.1:11211")
    assert main(["stack", "up", "--check"]) == EXIT_HARNESS
    err = capsys.readouterr().err
    assert "ALERTBENCH_REDIS_URL" in err
    assert "redis://" in err


def test_forced_docker_without_engine_exits_2_saying_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["stack", "up", "--check", "--stack", "docker"]) == EXIT_HARNESS
    err = capsys.readouterr().err
    assert "'docker' is not available" in err
    assert "--stack embedded" in err


def test_error_text_is_not_eaten_as_markup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Square brackets in a message (pip extras, lists) must reach the user.
    monkeypatch.setenv("ALERTBENCH_PG_DSN", "mysql://[docker]/x")
    assert main(["stack", "up", "--check"]) == EXIT_HARNESS
    assert "[docker]" in capsys.readouterr().err


def test_list_shows_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    import scenarios

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in scenarios.SCENARIOS:
        assert name in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "nosuch"], "unknown 'nosuch'; known: load"),
        (["run", "load", "--sweep", "abc"], "expected comma-separated rates"),
        (["run", "load", "--sweep", "200,100"], "positive and rising"),
        (["run", "load", "delivery", "--sweep"], "one scenario at a time"),
        (["run", "--slo-override", "nosuch_slo=3"], "nosuch_slo"),
        (["selfcheck", "--scenario", "nosuch"], "unknown 'nosuch'; known: load"),
        (["selfcheck", "--flaw", "nosuch"], "unknown flaw 'nosuch'"),
        (["selfcheck", "--scenario", "indexes"], "no cell of the self-check matrix"),
        (["selfcheck", "--scenario", "load", "--flaw", "no_retry"], "no cell"),
        (["run", "network", "--subscribers", "all"], "only the load scenario chooses"),
        # `alertbench locust` runs `run load`'s checks: it once crashed on the
        # missing --no-proxy before reaching them.
        (["locust", "--flaw", "nosuch"], "unknown flaw 'nosuch'"),
        (["locust", "--no-proxy", "--subscribers", "all", "--flaw", "nosuch"], "unknown flaw"),
    ],
)
def test_bad_run_requests_exit_2_before_starting_anything(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_HARNESS
    assert fragment in capsys.readouterr().err


def test_bad_run_flags_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "--rate", "-5"])
    assert caught.value.code == EXIT_HARNESS
    assert "must be positive" in capsys.readouterr().err


def test_an_unknown_flaw_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "load", "--flaw", "nosuch"]) == EXIT_HARNESS
    err = capsys.readouterr().err
    assert "unknown flaw 'nosuch'" in err
    assert "n_plus_one" in err


def test_every_flaw_in_the_self_check_matrix_exists_and_its_scenarios_too() -> None:
    import scenarios
    from harness.targets import CLIENT_FLAWS
    from reference_impl.flaws import Flaw

    for flaw, names in scenarios.CATCHES.items():
        assert flaw in CLIENT_FLAWS or Flaw(flaw)
        assert names
        assert all(name in scenarios.SCENARIOS for name in names)


def _command_target(tmp_path: Path, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[target]\nname = "{name}"\nkind = "command"\n[command]\nargv = ["true"]\n'
        '[capabilities]\nflaws = ["slow_sync"]\n[flaws]\nslow_sync = "sync takes a second"\n'
    )
    return path


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--target", "nosuch.toml"], "--target: no such file: nosuch.toml"),
        (["run", "--flaw", "n_plus_one", "--target", "{t}"], "unknown flaw 'n_plus_one'"),
        (["run", "--target", "{t}", "--target", "{t}"], "two targets share a name"),
        (["selfcheck", "--target", "{t}", "--flaw", "n_plus_one"], "unknown flaw"),
    ],
)
def test_bad_targets_exit_2_before_starting_anything(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_command_target(tmp_path))
    assert main([a.replace("{t}", path) for a in argv]) == EXIT_HARNESS
    assert fragment in capsys.readouterr().err


def test_the_target_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTBENCH_TARGET", str(_command_target(tmp_path, "from-env")))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "flaws (--flaw NAME) of target from-env" in out
    assert "slow_sync" in out
    assert "sync takes a second" in out
    assert "no_rejoin" in out  # the client's flaw, whatever the target
