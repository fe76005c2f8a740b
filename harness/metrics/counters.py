"""Named integer counters (requests sent, alerts received, errors by kind)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

__all__ = ["Counters"]


class Counters(Mapping[str, int]):
    """A thread-safe bag of named counters; reads as a ``Mapping[str, int]`` (missing = 0)."""

    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()
        for name, value in (initial or {}).items():
            self.incr(name, value)

    def incr(self, name: str, by: int = 1) -> int:
        """Add ``by`` (may be negative) to ``name`` and return the new value."""
        if not name:
            raise ValueError("counter name must not be empty")
        with self._lock:
            value = self._values.get(name, 0) + by
            self._values[name] = value
            return value

    def merge(self, other: Mapping[str, int]) -> Counters:
        """Add every counter of ``other`` into this one; returns ``self``."""
        for name, value in other.items():
            self.incr(name, value)
        return self

    def as_dict(self) -> dict[str, int]:
        """A sorted plain-dict copy (for results.json)."""
        with self._lock:
            return dict(sorted(self._values.items()))

    def __getitem__(self, name: str) -> int:
        with self._lock:
            if name not in self._values:
                raise KeyError(name)
            return self._values[name]

    def get(self, name: str, default: int = 0) -> int:  # type: ignore[override]
        """The counter's value, ``default`` (0) when never incremented."""
        with self._lock:
            return self._values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Counters({self.as_dict()!r})"
