"""A run's directory: ``<reports>/<run-id>/`` with every artefact, and a ``latest`` link.

reports/
  20260129T101500Z-load-1a2b3c/
    results.json  history.jsonl  report.html  junit.xml
    logs/app.log  logs/worker.log ...   (what each target process wrote)
  latest -> 20260129T101500Z-load-1a2b3c
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.history import Event, write_jsonl
from harness.report.baseline import Comparison
from harness.report.html import render_html
from harness.report.junit import to_junit_xml
from harness.report.results import RunResults, write_results

__all__ = ["LATEST", "LOGS", "log_file", "new_run_id", "point_latest", "write_run"]

LATEST = "latest"
"""Name of the symlink to the newest run."""
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
LOGS = "logs"
"""Folder of a run's target logs: ``logs/<process>.log``."""


def new_run_id(scenario: str, *, now: dt.datetime | None = None, suffix: str | None = None) -> str:
    """``<UTC timestamp>-<scenario>-<random hex>``: sortable by time, safe as a file name."""
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    tail = suffix if suffix is not None else secrets.token_hex(3)
    return "-".join(part for part in (when, _SAFE.sub("_", scenario), tail) if part)


def write_run(
    results: RunResults,
    directory: str | os.PathLike[str],
    *,
    history: Iterable[Event] | None = None,
    baseline: Comparison | None = None,
    name: str | None = None,
    latest: bool = True,
    logs: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``results.json``, ``history.jsonl``, ``report.html`` and ``junit.xml`` into
    ``directory/<name>/`` (default: the run id) and, with ``latest``, point
    ``directory/latest`` at it; returns that directory.

    ``history.jsonl`` is written empty (header only) without a history.
    ``logs`` (process name -> what it wrote) go to ``logs/<process>.log``.
    """
    folder = name if name is not None else results.run_id
    _plain_name(folder, "the report's folder")
    for process in logs or {}:
        _plain_name(process, "a log's process name")
    root = Path(directory)
    run_dir = root / folder
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(results, run_dir / "results.json")
    write_jsonl(history if history is not None else (), run_dir / "history.jsonl")
    (run_dir / "report.html").write_text(render_html(results, baseline=baseline), "utf-8")
    (run_dir / "junit.xml").write_text(to_junit_xml(results), "utf-8")
    for process, data in (logs or {}).items():
        (run_dir / LOGS).mkdir(exist_ok=True)
        (run_dir / log_file(process)).write_bytes(data)
    if latest:
        point_latest(root, folder)
    return run_dir


def log_file(process: str) -> str:
    """Where a run's folder keeps what target process ``process`` wrote."""
    return f"{LOGS}/{process}.log"


def _plain_name(name: str, what: str) -> None:
    if not name or _SAFE.search(name) or name in (".", ".."):
        raise ValueError(f"{what} must be a plain file name, got {name!r}")


def point_latest(root: Path, run_id: str) -> None:
    """Point ``root/latest`` at ``root/run_id``, atomically."""
    # Replace atomically: a reader never sees a missing or half-made link.
    link = root / LATEST
    tmp = root / f".{LATEST}.{os.getpid()}.{secrets.token_hex(3)}"
    os.symlink(run_id, tmp, target_is_directory=True)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
