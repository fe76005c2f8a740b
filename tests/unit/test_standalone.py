"""The harness meets a target only through the contract, never through an import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_under_harness_or_scenarios_imports_the_reference() -> None:
    offenders = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for package in ("harness", "scenarios")
        for path in (ROOT / package).rglob("*.py")
        for name in _imports(path)
        if name == "reference_impl" or name.startswith("reference_impl.")
    )
    assert offenders == []


def test_the_whole_harness_loads_without_the_reference() -> None:
    # Every module of the harness and the scenarios, in a fresh interpreter:
    # reference_impl must not be among the modules loaded.
    code = (
        "import importlib, pkgutil, sys\n"
        "import harness, scenarios\n"
        "for pkg in (harness, scenarios):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        # Entry points, not modules: the locustfile is run by Locust (which
        # patches the interpreter with gevent first).
        "        if m.name not in ('harness.faults.__main__', 'harness.scale.locustfile'):\n"
        "            importlib.import_module(m.name)\n"
        "loaded = sorted(n for n in sys.modules if n.split('.')[0] == 'reference_impl')\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
