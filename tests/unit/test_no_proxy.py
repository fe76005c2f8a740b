"""``--no-proxy``: a stack without Toxiproxy, the fault scenarios it refuses,
and what the report and the CLI say about it (issue 13, item 5)."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import pytest

import scenarios as suite
from harness.cli import main
from harness.errors import ConfigError, StackStartError
from harness.metrics.resources import mark_cpu, usage_between
from harness.report import make_results
from harness.report.html import render_html, resources_summary
from harness.runner import RunOptions, run_scenario
from harness.scenario import RunParams, check_proxy_faults, proxy_faults
from harness.stack import Stack, StackConfig
from harness.stack.endpoints import PostgresEndpoint, RedisEndpoint
from harness.stack.proxies import ToxiproxyServer


def _stack(toxiproxy: ToxiproxyServer | None) -> Stack:
    """A Stack record with nothing running behind it (no process is started)."""
    pg = PostgresEndpoint(host="127.0.0.1", port=5432, user="postgres")
    rd = RedisEndpoint(host="127.0.0.1", port=6379)
    return Stack(
        {"postgres": "embedded", "redis": "embedded"},
        postgres=pg,
        redis=rd,
        postgres_direct=pg,
        redis_direct=rd,
        toxiproxy=toxiproxy,
        proxies={},
        startup_s={"total": 0.0},
    )


# -- which scenarios need the proxy ---------------------------------------------


def test_every_scenario_that_talks_to_toxiproxy_declares_its_proxy_faults() -> None:
    """A scenario whose code reaches Toxiproxy must say so, or --no-proxy would
    let it run and fail half-way (or pass without its fault)."""
    for name, scenario in suite.SCENARIOS.items():
        source = inspect.getsource(inspect.getmodule(type(scenario)))  # type: ignore[arg-type]
        uses_proxy = re.search(r"ToxiproxyClient|\.toxiproxy\b", source) is not None
        assert bool(proxy_faults(scenario)) == uses_proxy, name


def test_the_fault_scenarios_are_the_ones_that_break_hops() -> None:
    planned = {name: proxy_faults(scenario) for name, scenario in suite.SCENARIOS.items()}
    assert {name for name, proxies in planned.items() if proxies} == {
        "cache",
        "chaos",
        "network",
        "queue",
        "rollback",
    }
    assert set(planned["chaos"]) == {"app", "postgres", "redis"}
    # rollback's stage cuts take the Postgres hop down.
    assert planned["rollback"] == ("postgres",)


def test_no_proxy_refuses_a_fault_scenario_naming_it_and_the_flag() -> None:
    chosen = suite.get(["load", "network", "cache"])
    with pytest.raises(ConfigError) as caught:
        check_proxy_faults(chosen, bypassed=True)
    message = str(caught.value)
    assert "--no-proxy" in message
    assert "network (faults on app)" in message
    assert "cache (faults on redis)" in message
    assert "load" not in message.split(":", 1)[1].split("inject")[0]
    check_proxy_faults(chosen, bypassed=False)  # with the proxy, all may run
    check_proxy_faults(suite.get(["load", "dedupe"]), bypassed=True)


def test_the_cli_refuses_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "load", "network", "--no-proxy", "--reports-dir", "/nonexistent/x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--no-proxy" in err
    assert "network" in err
    assert not Path("/nonexistent/x").exists()  # refused before the run folder


def test_the_runner_refuses_a_fault_scenario_on_a_bypassed_stack(tmp_path: Path) -> None:
    network = suite.get(["network"])[0]
    with pytest.raises(ConfigError, match="--no-proxy"):
        asyncio.run(
            run_scenario(
                network,
                _stack(None),
                RunParams(projects=10),
                options=RunOptions(reports_dir=tmp_path),
                run_id="r",
            )
        )
    assert list(tmp_path.iterdir()) == []  # no report: nothing ran


# -- the stack without a proxy ---------------------------------------------------


def test_no_proxy_config_ignores_toxiproxy_url() -> None:
    env = {"TOXIPROXY_URL": "http://127.0.0.1:8474"}
    assert StackConfig.from_env(env).toxiproxy_url == "http://127.0.0.1:8474"
    bypassed = StackConfig.from_env(env, proxy=False)
    assert bypassed.proxy is False
    assert bypassed.toxiproxy_url is None


def test_a_bypassed_stack_hands_out_direct_addresses_and_says_so() -> None:
    stack = _stack(None)
    assert stack.proxy_bypassed
    assert stack.attach_app("http://127.0.0.1:9999/") == "http://127.0.0.1:9999"
    described = stack.describe()
    assert described["proxy_bypassed"] is True
    assert described["toxiproxy"] is None
    with pytest.raises(StackStartError, match="--no-proxy"):
        stack.add_proxy("app1", "127.0.0.1", 9998)
    stack.stop_app()  # detaching needs no proxy server either
    assert stack.app_urls == []


def test_the_report_and_the_cli_summary_say_the_proxy_was_bypassed() -> None:
    from harness.cli import _results_table

    results = make_results(
        run_id="r", scenario="load", started_at="a", finished_at="b", stack=_stack(None).describe()
    )
    html = render_html(results)
    assert "<th>proxy</th><td>BYPASSED (--no-proxy)" in html
    assert type(results).from_dict(results.to_dict()).stack["proxy_bypassed"] is True
    table = _results_table(results)
    rows = [cell for column in table.columns for cell in column.cells]
    assert "BYPASSED" in rows
    # With the proxy, the report names it and the CLI adds no row.
    proxied = _stack(ToxiproxyServer("http://127.0.0.1:1", "embedded", "x")).describe()
    results = make_results(
        run_id="r", scenario="load", started_at="a", finished_at="b", stack=proxied
    )
    assert "<th>proxy</th><td>Toxiproxy (embedded) in front of every hop" in render_html(results)
    rows = [cell for column in _results_table(results).columns for cell in column.cells]
    assert "BYPASSED" not in rows


# -- an external Toxiproxy in the CPU table -----------------------------------------


def test_an_external_toxiproxy_is_listed_unmeasured_with_the_reason() -> None:
    server = ToxiproxyServer("http://10.0.0.9:8474", "external", "2.9.0", "alertbench-1-")
    stack = _stack(server)
    reasons = stack.unmeasured_roles()
    assert set(reasons) == {"toxiproxy"}
    assert "external Toxiproxy" in reasons["toxiproxy"]
    assert "TOXIPROXY_URL" in reasons["toxiproxy"]

    processes = {"app": 1, "postgres": 2}  # local ones; the external server has no pid here
    start = mark_cpu(
        processes,
        read=lambda pid, children: 0.0,
        machine=lambda: (0.0, 10.0),
        unmeasured=reasons,
    )
    end = mark_cpu(
        processes,
        read=lambda pid, children: 5.0,
        machine=lambda: (5.0, 20.0),
        unmeasured=reasons,
    )
    usage = usage_between(start, end, operations=100, cores=2).to_dict()
    assert usage["roles"]["toxiproxy"] == {
        "cpu_s": None,
        "cpu_pct": None,
        "cpu_ms_per_op": None,
        "unmeasured": reasons["toxiproxy"],
    }
    assert usage["roles"]["app"]["cpu_ms_per_op"] == 50.0
    assert usage["unmeasured"] == ["toxiproxy"]
    assert usage["total_cpu_ms_per_op"] == 100.0  # measured roles only
    assert f"unmeasured: toxiproxy ({reasons['toxiproxy']})" in resources_summary(usage)
    html = render_html(
        make_results(run_id="r", scenario="load", started_at="a", finished_at="b", resources=usage)
    )
    assert '<td>toxiproxy</td><td colspan="2">unmeasured: an external Toxiproxy' in html


def test_an_embedded_toxiproxy_and_a_bypassed_one_are_not_unmeasured() -> None:
    assert _stack(ToxiproxyServer("http://127.0.0.1:1", "embedded", "x")).unmeasured_roles() == {}
    assert _stack(None).unmeasured_roles() == {}  # bypassed: no such role at all
