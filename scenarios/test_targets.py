"""Another target than the reference: the seed's Node.js system (``examples/seed-node``).

The main suite runs on it at CI's reduced size, through its target file,
exactly as ``alertbench run --target examples/seed-node/target.toml`` would.
Needs Node >= 20 and its npm packages (``nox -s tests`` installs them where
npm exists); skipped, with the reason, otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import scenarios
from harness.cli import main
from harness.report import RunResults
from harness.runner import run_scenario
from harness.stack import AppSpec, Stack, StackConfig, start_stack
from harness.stack.app import DEFAULT_TOKEN_SECRET
from harness.targets import Target, load_target
from scenarios.test_scenarios import SMALL, ci_options, reports_dir, why

pytestmark = [pytest.mark.scenario, pytest.mark.integration]

SEED_NODE = Path(__file__).resolve().parents[1] / "examples" / "seed-node"


def _node_missing() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not installed"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = int(version.stdout.strip().lstrip("v").split(".")[0] or 0)
    if major < 20:
        return f"the seed's Node target needs Node >= 20, found {version.stdout.strip()}"
    if not (SEED_NODE / "node_modules" / "socket.io").is_dir():
        return "its npm packages are not installed: run `npm ci --prefix examples/seed-node`"
    return None


MISSING = _node_missing()
skip_without_node = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def stack(alertbench_stack_config: StackConfig) -> Iterator[Stack]:
    with start_stack(alertbench_stack_config) as stack:
        yield stack


@pytest.fixture(scope="module")
def seed_node() -> Target:
    return load_target(SEED_NODE / "target.toml")


async def _run(stack: Stack, target: Target, name: str, tmp_path: Path) -> RunResults:
    return await run_scenario(
        scenarios.SCENARIOS[name],
        stack,
        SMALL,
        options=ci_options(tmp_path),
        run_id=f"test-{target.name}-{name}",
        target=target,
    )


@skip_without_node
@pytest.mark.parametrize("name", scenarios.MAIN_SUITE)
async def test_the_main_suite_judges_the_seed_node_target(
    stack: Stack, seed_node: Target, name: str, tmp_path: Path
) -> None:
    results = await _run(stack, seed_node, name, tmp_path)
    assert results.errors == ()
    assert results.target["name"] == "seed-node"
    # The seed's system with the seed's fixes honours the contract: every
    # scenario it has the capabilities for passes, as on the reference.
    assert results.verdict == "pass", why(results)


@skip_without_node
def test_two_targets_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run", "delivery",
            "--target", "reference",
            "--target", str(SEED_NODE / "target.toml"),
            "--projects", "20",
            "--reports-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out
    compare = tmp_path / "latest" / "compare" / "compare.json"
    data = json.loads(compare.read_text())
    assert data["targets"] == ["reference", "seed-node"]
    by_target = data["scenarios"]["delivery"]
    assert {t: by_target[t]["runs"][0]["verdict"] for t in by_target} == {
        "reference": "pass",
        "seed-node": "pass",
    }
    assert (compare.parent / "compare.html").stat().st_size > 0


def _reference_as_command(folder: Path) -> Path:
    """The reference pipeline as a plain ``command`` target: started by its
    command line, told everything through the contract's environment, and
    declaring no optional capability but the commit timestamp."""
    python = json.dumps(sys.executable)
    path = folder / "target.toml"
    path.write_text(
        f"""
[target]
name = "reference-command"
kind = "command"

[command]
argv = [{python}, "-m", "reference_impl", "--log-level", "WARNING"]
migrate = [{python}, "-m", "reference_impl", "--migrate-only", "--log-level", "WARNING"]

[auth]
claims = {{ sub = "{{user_id}}", iss = "alertbench-reference" }}

[capabilities]
commit_timestamp = true
"""
    )
    return path


async def test_a_command_target_is_started_through_the_contract_s_environment(
    stack: Stack, tmp_path: Path
) -> None:
    target = load_target(_reference_as_command(tmp_path))
    results = await _run(stack, target, "delivery", tmp_path)
    assert results.errors == ()
    assert results.verdict == "pass", why(results)
    # Latencies any target can give, and commit -> receipt since it reports commits.
    assert {
        "delivery.new_alert",
        "receipt_after_request.new_alert",
        "receipt_after_response.new_alert",
    } <= set(results.latencies)
    assert stack.app is None  # stopped after the scenario, like every child


@pytest.mark.parametrize(("name", "lacking"), [("rollback", "fault_injection"), ("queue", "queue")])
async def test_a_scenario_needing_a_missing_capability_is_not_applicable(
    stack: Stack, tmp_path: Path, name: str, lacking: str
) -> None:
    target = load_target(_reference_as_command(tmp_path))
    results = await _run(stack, target, name, tmp_path)
    assert (results.verdict, results.exit_code) == ("not_applicable", 0)
    assert results.not_applicable is not None
    assert lacking in results.not_applicable
    assert results.checks == ()
    report = reports_dir(tmp_path) / results.run_id / "report.html"
    assert "not applicable" in report.read_text().lower()


async def test_a_url_target_is_judged_through_a_proxy_in_front_of_it(
    stack: Stack, alertbench_stack_config: StackConfig, tmp_path: Path
) -> None:
    # A "deployment" that runs on its own: the reference on a second stack.
    with start_stack(alertbench_stack_config) as deployed:
        deployed.start_app(AppSpec(database="deployed"))
        assert deployed.app is not None
        path = tmp_path / "target.toml"
        path.write_text(
            f"""
[target]
name = "deployed"
kind = "url"

[url]
base_url = "{deployed.app.direct_urls[0]}"
pg_dsn = "{deployed.postgres_direct.dsn_for("deployed")}"

[auth]
secret = "{DEFAULT_TOKEN_SECRET}"
claims = {{ sub = "{{user_id}}", iss = "alertbench-reference" }}
"""
        )
        target = load_target(path)
        first = await _run(stack, target, "delivery", tmp_path / "first")
        # A second scenario seeds beside the first one's data and judges only its own.
        second = await _run(stack, target, "delivery", tmp_path / "second")
    for results in (first, second):
        assert results.errors == ()
        assert results.verdict == "pass", why(results)
    assert stack.app_urls == []  # detached: the proxy is gone, the deployment was not ours
