"""The JSONL form of a history: a header line, then one JSON object per event.

    {"alertbench_history": 1}
    {"type": "invoke", "process": "c3", "f": "complete", "op_id": 1, ...}
    {"type": "ok", "process": "c3", "f": "complete", "op_id": 1, ...}

Fields are those of the event dataclasses; ``type`` selects the class.
Readers accept files without the header, reject unknown types and fields
with the line number, and ignore blank lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final, TextIO

from harness.history.events import EVENT_CLASSES, Event
from harness.history.store import History, HistoryError

__all__ = [
    "HISTORY_FORMAT_VERSION",
    "event_from_dict",
    "event_to_dict",
    "iter_jsonl",
    "read_jsonl",
    "write_jsonl",
]

HISTORY_FORMAT_VERSION: Final = 1
"""Version of the JSONL layout; bumped when a field changes meaning."""
_HEADER_KEY: Final = "alertbench_history"


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    """An event class's fields, ``type`` first (``dataclasses.fields`` builds
    its answer anew on each call: a history has hundreds of thousands)."""
    names = _FIELDS.get(cls)
    if names is None:
        fields = [f.name for f in dataclasses.fields(cls)]
        names = _FIELDS[cls] = ("type", *(n for n in fields if n != "type"))
    return names


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of ``event`` (``type`` first, for readability)."""
    return {name: getattr(event, name) for name in _field_names(type(event))}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event; :class:`HistoryError` names an unknown type or field."""
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in EVENT_CLASSES:
        raise HistoryError(f"unknown event type {kind!r}; known: {sorted(EVENT_CLASSES)}")
    cls = EVENT_CLASSES[kind]
    unknown = data.keys() - _field_names(cls)
    if unknown:
        raise HistoryError(f"{kind} event: unknown field(s) {sorted(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise HistoryError(f"{kind} event: {exc}") from None


def write_jsonl(events: Iterable[Event], path: str | os.PathLike[str]) -> Path:
    """Write ``events`` to ``path`` (header first) and return the path."""
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        _write(events, out)
    return target


def _write(events: Iterable[Event], out: TextIO) -> None:
    out.write(json.dumps({_HEADER_KEY: HISTORY_FORMAT_VERSION}) + "\n")
    for event in events:
        out.write(json.dumps(event_to_dict(event), separators=(",", ":"), default=str) + "\n")


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[Event]:
    """Stream the events of a JSONL history file."""
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HistoryError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(data, dict):
                raise HistoryError(f"{path}:{number}: expected an object")
            if _HEADER_KEY in data:
                version = data[_HEADER_KEY]
                if version != HISTORY_FORMAT_VERSION:
                    raise HistoryError(
                        f"{path}:{number}: history format {version!r}, "
                        f"this alertbench reads {HISTORY_FORMAT_VERSION}"
                    )
                continue
            try:
                yield event_from_dict(data)
            except HistoryError as exc:
                raise HistoryError(f"{path}:{number}: {exc}") from None


def read_jsonl(path: str | os.PathLike[str]) -> History:
    """Load a history written by :func:`write_jsonl` (indexes are re-assigned in file order)."""
    history = History()
    for event in iter_jsonl(path):
        # Made here and held by nobody else: stored without History.append's copy.
        history._add(event)
    return history
