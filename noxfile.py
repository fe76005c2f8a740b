"""One set of commands for developers and CI: ``python3 -m nox -s <session>``.

Sessions: ``tests`` (unit + integration on the embedded stack), ``lint``,
``typecheck``, ``scenarios`` (the main job), ``benchmarks``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = ["3.11", "3.12", "3.13"]
CURRENT = None  # the interpreter running nox


@nox.session(python=CURRENT)
def tests(session: nox.Session) -> None:
    """Unit and integration tests against real services on 127.0.0.1."""
    # [docker] too, so the docker provider's code paths are importable and
    # its tests skip only for want of an engine, never of a package.
    session.install("-e", ".[test,docker]")
    session.run(
        "pytest",
        "tests",
        "scenarios",
        "--benchmark-disable",
        "-p",
        "no:cacheprovider",
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

    Writes reports/<run-id>/report.html (and results.json, history.jsonl,
    junit.xml) per scenario; ``reports/latest`` points at the last one.
    Arguments after ``--`` go to ``alertbench run`` (e.g. ``-- --projects 200``).
    """
    session.install("-e", ".")
    session.run("alertbench", "run", "--stack", "embedded", *session.posargs)


@nox.session(python=CURRENT)
def benchmarks(session: nox.Session) -> None:
    """pytest-benchmark runs; results are saved under .benchmarks/."""
    session.install("-e", ".[test]")
    session.run(
        "pytest", "tests/benchmarks", "--benchmark-only", "--benchmark-autosave", *session.posargs
    )
