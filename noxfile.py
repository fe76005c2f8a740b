"""One set of commands for developers and CI: ``.nox-venv/bin/python -m nox -s <session>``.

Sessions: ``tests`` (unit + integration on the embedded stack), ``lint``,
``typecheck``, ``scenarios`` (the main job), ``benchmarks``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
# uv where it is installed (`pip install "nox[uv]"`): it installs the sessions'
# packages several times faster than pip; virtualenv and pip otherwise.
nox.options.default_venv_backend = "uv|virtualenv"
# uv does not compile bytecode at install as pip does: where Python may not
# write it either (PYTHONDONTWRITEBYTECODE), every process the tests start
# (the app, each shard, Locust) would compile every module it imports anew.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
# uv trusts its own bundled roots unless told otherwise, pip the system's: on
# a machine whose certificates of its own sit in the system store (a TLS
# proxy, say), uv could not reach the index where pip can. Same store as pip.
os.environ.setdefault("UV_NATIVE_TLS", "1")

PYTHON = ["3.11", "3.12", "3.13"]
CURRENT = None  # the interpreter running nox


#: npm packages the tests use where Node >= 20 and npm exist: the JavaScript
#: client test, and the seed's Node system as a second target.
NPM_PACKAGES = ("tests/js", "examples/seed-node")
MIN_NODE = 20


def _node_major() -> int | None:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        return None
    try:
        text = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return int(text.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def _install_npm_packages(session: nox.Session) -> None:
    """``npm ci`` (from the lockfile) or ``npm install`` of each package that the
    tests drive; where Node or npm is missing the tests skip and say why."""
    major = _node_major()
    if major is None or major < MIN_NODE:
        session.log(f"Node >= {MIN_NODE} with npm not found: the Node tests will be skipped")
        return
    for folder in NPM_PACKAGES:
        verb = "ci" if (Path(folder) / "package-lock.json").exists() else "install"
        try:
            session.run(
                "npm",
                verb,
                "--prefix",
                folder,
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                external=True,
            )
        except nox.command.CommandFailed:
            # The registry out of reach is the machine's problem, not the
            # code's: the tests that need the package skip and say why.
            session.warn(f"npm {verb} --prefix {folder} failed: its tests will be skipped")


@nox.session(python=CURRENT)
def tests(session: nox.Session) -> None:
    """Unit and integration tests against real services on 127.0.0.1 (and,
    where Node >= 20 exists, the JavaScript client and the Node target)."""
    # [docker] too, so the docker provider's code paths are importable and
    # its tests skip only for want of an engine, never of a package.
    # [locust] for the test of a Locust master with two workers.
    session.install("-e", ".[test,docker,locust]")
    _install_npm_packages(session)
    session.run(
        "pytest",
        "tests",
        "scenarios",
        "--benchmark-disable",
        "-p",
        "no:cacheprovider",
        # The slowest tests, so CI's time (kept well under 30 min) is visible.
        "--durations=20",
        *session.posargs,
    )


@nox.session(python=CURRENT)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=CURRENT)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library code."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "harness", "reference_impl", "scenarios")


@nox.session(python=CURRENT)
def scenarios(session: nox.Session) -> None:
    """The main job: run the main scenario suite on the embedded stack.

    ``-- --target examples/seed-node/target.toml`` runs it on the Node target
    (installed here first where Node >= 20 and npm exist).

    Writes reports/<run-id>/index.html (every scenario's verdict, linking to
    reports/<run-id>/<scenario>/report.html), reports/index.html (every run)
    and ``reports/latest`` (the run).
    Arguments after ``--`` go to ``alertbench run`` (e.g. ``-- --projects 200``).
    """
    session.install("-e", ".")
    if any("seed-node" in arg for arg in session.posargs):
        _install_npm_packages(session)
    session.run("alertbench", "run", "--stack", "embedded", *session.posargs)


@nox.session(python=CURRENT)
def benchmarks(session: nox.Session) -> None:
    """pytest-benchmark runs; results are saved under .benchmarks/."""
    session.install("-e", ".[test]")
    session.run(
        "pytest", "tests/benchmarks", "--benchmark-only", "--benchmark-autosave", *session.posargs
    )
