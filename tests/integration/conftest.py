"""Integration tests: real Postgres, Redis and proxies on 127.0.0.1."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import reap_leftovers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    """A private parent for run directories, traversable by Postgres's account.

    pytest's own ``tmp_path`` lives below a 0700 directory, which the
    unprivileged account that Postgres runs as (when we are root) cannot enter.
    """
    path = Path(tempfile.mkdtemp(prefix="alertbench-test-"))
    path.chmod(0o755)
    yield path
    # A test that failed half-way may have left an owner-less run behind:
    # stop its processes before deleting the directory that proves they are ours.
    reap_leftovers(path, timeout_s=10)
    shutil.rmtree(path, ignore_errors=True)
