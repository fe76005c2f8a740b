"""The seed's Node target's own test suite (``npm test``), on the stack's services.

Its tests make and drop databases of their own on the stack's Postgres and
use its Redis. Needs Node >= 20 and the example's npm packages (``nox -s
tests`` installs them where npm exists); skipped, with the reason, otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.stack import Stack

SEED_NODE = Path(__file__).resolve().parents[2] / "examples" / "seed-node"
NPM = shutil.which("npm")


def _missing() -> str | None:
    node = shutil.which("node")
    if node is None or NPM is None:
        return "node and npm are not installed"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    if int(version.stdout.strip().lstrip("v").split(".")[0] or 0) < 20:
        return f"the seed's Node target needs Node >= 20, found {version.stdout.strip()}"
    if not (SEED_NODE / "node_modules" / "socket.io").is_dir():
        return "its npm packages are not installed: run `npm ci --prefix examples/seed-node`"
    return None


MISSING = _missing()


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_npm_test_passes_on_the_stack(alertbench_stack: Stack) -> None:
    assert NPM is not None
    env = {
        **os.environ,
        "PG_DSN": alertbench_stack.postgres_direct.dsn,
        "REDIS_URL": alertbench_stack.redis_direct.url,
    }
    done = subprocess.run(
        [NPM, "test", "--prefix", str(SEED_NODE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    # node:test's summary: tests ran, none failed, none skipped for want of services.
    counts = dict(re.findall(r"^# (tests|pass|fail|skipped) (\d+)$", output, re.M))
    assert int(counts["tests"]) > 0, output[-2000:]
    assert counts["fail"] == "0"
    assert counts["skipped"] == "0"
