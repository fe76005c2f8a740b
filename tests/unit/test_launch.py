"""Launching a server on a port that was free: retries only a lost race for the port."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.errors import StackStartError
from harness.stack import _process
from harness.stack._net import LOOPBACK, free_port, port_is_open
from harness.stack._process import RunDir, launch_on_free_port

IDLE = [sys.executable, "-c", "import signal; signal.pause()"]


def _listener(port: int) -> list[str]:
    """A server that binds ``port`` (saying "in use" and exiting if it cannot)."""
    code = (
        "import signal, socket, sys\n"
        "s = socket.socket()\n"
        "try:\n"
        f"    s.bind(({LOOPBACK!r}, {port}))\n"
        "except OSError as exc:\n"
        "    sys.exit(f'bind: address already in use ({exc})')\n"
        "s.listen()\n"
        "signal.pause()\n"
    )
    return [sys.executable, "-c", code]


def _accepts(port: int) -> Callable[[], str | None]:
    """Ready when anything accepts a connection on ``port``."""
    return lambda: f"ready on {port}" if port_is_open(LOOPBACK, port) else None


def _say_and_exit(text: str) -> list[str]:
    return [sys.executable, "-c", f"print({text!r}, flush=True)"]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[RunDir]:
    run = RunDir.create(tmp_path)
    yield run
    run.close(timeout_s=5)


def _always_ready(port: int) -> Callable[[], str | None]:
    return lambda: f"ready on {port}"


def test_a_lost_race_for_the_port_is_retried_on_another(run: RunDir) -> None:
    ports: list[int] = []

    def argv(port: int) -> list[str]:
        ports.append(port)
        return _say_and_exit("bind: Address already in use") if len(ports) == 1 else _listener(port)

    def probe_for(port: int) -> Callable[[], str | None]:
        # The first server never answers: it exits, having lost the race.
        return (lambda: None) if len(ports) == 1 else _always_ready(port)

    port, proc, answer = launch_on_free_port(
        run, "srv", argv, probe_for, what="test server", stop_signal=signal.SIGTERM, timeout_s=10
    )
    assert len(ports) == 2
    assert port == ports[1]
    assert answer == f"ready on {port}"
    assert proc.alive()


def test_any_other_early_exit_is_an_error_with_the_log(run: RunDir) -> None:
    with pytest.raises(StackStartError, match=r"test server did not start:\n.*no such config"):
        launch_on_free_port(
            run,
            "srv",
            lambda port: _say_and_exit("fatal: no such config file"),
            lambda port: lambda: None,
            what="test server",
            stop_signal=signal.SIGTERM,
            timeout_s=10,
        )


def test_a_server_that_never_answers_times_out(run: RunDir) -> None:
    with pytest.raises(StackStartError, match=r"test server was not ready after 0\.3 s"):
        launch_on_free_port(
            run,
            "srv",
            lambda port: IDLE,
            lambda port: lambda: None,
            what="test server",
            stop_signal=signal.SIGTERM,
            timeout_s=0.3,
        )


def test_a_port_taken_by_another_server_is_not_mistaken_for_ours(
    run: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port was free when picked, then another server bound it before ours
    (two runs on one busy machine): the other one answers the probe while
    ours fails to bind. Seen in a self-check: the harness took another run's
    app for its own and its clients' tokens were refused."""
    squatter = socket.create_server((LOOPBACK, 0))
    taken = squatter.getsockname()[1]
    picks = iter([taken, free_port()])
    monkeypatch.setattr(_process, "free_port", lambda: next(picks))
    try:
        port, proc, answer = launch_on_free_port(
            run,
            "srv",
            _listener,
            _accepts,
            what="test server",
            stop_signal=signal.SIGTERM,
            timeout_s=10,
        )
    finally:
        squatter.close()
    assert port != taken
    assert answer == f"ready on {port}"
    assert proc.listens_on(port)
