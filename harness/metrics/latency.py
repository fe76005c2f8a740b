"""Latency histograms: HdrHistogram in microseconds, read and written in milliseconds.

Range 1 µs .. 60 s at 3 significant digits (0.1 % relative error). Values
under 1 µs are recorded as 1 µs; negative values and values over 60 s are
clamped into range and counted in :attr:`LatencyRecorder.clipped`,
so a stall longer than 60 s still shows as "at least 60 s" instead of vanishing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_MS",
    "LOWEST_MS",
    "SIGNIFICANT_DIGITS",
    "STANDARD_PERCENTILES",
    "LatencyRecorder",
    "LatencySummary",
]

LOWEST_MS: Final = 0.001
"""Smallest distinguishable latency (1 µs)."""
HIGHEST_MS: Final = 60_000.0
"""Largest trackable latency (60 s); larger values are clamped and counted as clipped."""
SIGNIFICANT_DIGITS: Final = 3
"""Precision of the histogram."""
STANDARD_PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0, 99.9, 100.0)
"""The percentiles reports show."""

_US_PER_MS: Final = 1000
_HIGHEST_US: Final = int(HIGHEST_MS * _US_PER_MS)


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySummary:
    """The figures of a latency histogram, all in milliseconds (``None`` when empty)."""

    count: int
    """Number of recorded values (corrected recording adds synthetic ones)."""
    min_ms: float | None
    """Smallest value."""
    mean_ms: float | None
    """Arithmetic mean."""
    p50_ms: float | None
    """Median."""
    p90_ms: float | None
    """90th percentile."""
    p95_ms: float | None
    """95th percentile."""
    p99_ms: float | None
    """99th percentile."""
    p999_ms: float | None
    """99.9th percentile."""
    max_ms: float | None
    """Largest value."""
    clipped: int
    """Values outside 1 µs .. 60 s, clamped into range."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencySummary:
        """Inverse of :meth:`to_dict`."""

        def ms(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            count=int(data.get("count", 0)),
            min_ms=ms("min_ms"),
            mean_ms=ms("mean_ms"),
            p50_ms=ms("p50_ms"),
            p90_ms=ms("p90_ms"),
            p95_ms=ms("p95_ms"),
            p99_ms=ms("p99_ms"),
            p999_ms=ms("p999_ms"),
            max_ms=ms("max_ms"),
            clipped=int(data.get("clipped", 0)),
        )


class LatencyRecorder:
    """An HdrHistogram of latencies in milliseconds (1 µs .. 60 s, 3 significant digits)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._hist = HdrHistogram(1, _HIGHEST_US, SIGNIFICANT_DIGITS)
        self.clipped = 0
        """Values that were clamped into range."""

    # -- recording ------------------------------------------------------------

    def _to_us(self, value_ms: float) -> int:
        if not math.isfinite(value_ms):
            raise ValueError(f"latency must be a finite number of ms, got {value_ms!r}")
        value_us = round(value_ms * _US_PER_MS)
        if value_ms < 0 or value_us > _HIGHEST_US:
            self.clipped += 1
            return min(max(value_us, 1), _HIGHEST_US)
        # Below the resolution (e.g. zero lag on a virtual clock) is not out of range.
        return max(int(value_us), 1)

    def record(self, value_ms: float, *, count: int = 1) -> None:
        """Record one latency (``count`` times)."""
        self._hist.record_value(self._to_us(value_ms), count)

    def record_many(self, values_ms: Iterable[float]) -> None:
        """Record each value once."""
        for value in values_ms:
            self.record(value)

    def record_corrected(self, value_ms: float, expected_interval_ms: float) -> None:
        """Record with HdrHistogram's coordinated-omission correction.

        For a closed-loop measurement taken every ``expected_interval_ms``: a
        value of 10 intervals also records the 9 samples that the stall kept
        from being taken (value - interval, value - 2 intervals, ...).
        """
        if not (math.isfinite(expected_interval_ms) and expected_interval_ms > 0):
            raise ValueError(f"expected_interval_ms must be > 0, got {expected_interval_ms!r}")
        interval_us = max(1, round(expected_interval_ms * _US_PER_MS))
        self._hist.record_corrected_value(self._to_us(value_ms), interval_us)

    def merge(self, other: LatencyRecorder) -> LatencyRecorder:
        """Add ``other``'s values into this recorder; returns ``self``."""
        self._hist.add(other._hist)
        self.clipped += other.clipped
        return self

    def reset(self) -> None:
        """Forget every value."""
        self._hist.reset()
        self.clipped = 0

    # -- reading --------------------------------------------------------------

    @property
    def count(self) -> int:
        """Number of recorded values."""
        return int(self._hist.get_total_count())

    def percentile(self, percentile: float) -> float | None:
        """The value at ``percentile`` (0..100) in ms; ``None`` when empty."""
        if not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
        if self.count == 0:
            return None
        if percentile == 100:
            return self.max_ms
        return float(self._hist.get_value_at_percentile(percentile)) / _US_PER_MS

    def percentiles(
        self, percentiles: Iterable[float] = STANDARD_PERCENTILES
    ) -> dict[float, float]:
        """``{percentile: ms}``; empty dict when nothing was recorded."""
        out: dict[float, float] = {}
        for p in percentiles:
            value = self.percentile(p)
            if value is not None:
                out[p] = value
        return out

    @property
    def mean_ms(self) -> float | None:
        """Arithmetic mean in ms; ``None`` when empty."""
        return float(self._hist.get_mean_value()) / _US_PER_MS if self.count else None

    @property
    def max_ms(self) -> float | None:
        """Largest value in ms (highest equivalent value of its bucket); ``None`` when empty."""
        return float(self._hist.get_max_value()) / _US_PER_MS if self.count else None

    @property
    def min_ms(self) -> float | None:
        """Smallest value in ms; ``None`` when empty."""
        return float(self._hist.get_min_value()) / _US_PER_MS if self.count else None

    def summary(self) -> LatencySummary:
        """The standard figures."""
        return LatencySummary(
            count=self.count,
            min_ms=self.min_ms,
            mean_ms=self.mean_ms,
            p50_ms=self.percentile(50),
            p90_ms=self.percentile(90),
            p95_ms=self.percentile(95),
            p99_ms=self.percentile(99),
            p999_ms=self.percentile(99.9),
            max_ms=self.max_ms,
            clipped=self.clipped,
        )

    def distribution(self, *, ticks_per_half_distance: int = 5) -> list[tuple[float, float]]:
        """``[(percentile, ms)]`` along HdrHistogram's percentile iterator, for charts."""
        if self.count == 0:
            return []
        points: list[tuple[float, float]] = []
        for item in self._hist.get_percentile_iterator(ticks_per_half_distance):
            points.append(
                (float(item.percentile_level_iterated_to), item.value_iterated_to / _US_PER_MS)
            )
        return points

    # -- encoding -------------------------------------------------------------

    def encode(self) -> str:
        """HdrHistogram's compressed base64 form (``HISTFAAA...``), readable by any HdrHistogram."""
        return bytes(self._hist.encode()).decode("ascii")

    @classmethod
    def decode(cls, encoded: str, *, name: str = "", clipped: int = 0) -> LatencyRecorder:
        """Rebuild a recorder from :meth:`encode`'s output."""
        recorder = cls(name)
        try:
            recorder._hist = HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as exc:  # hdrh raises assorted errors on bad input
            raise ValueError(f"not an encoded HdrHistogram: {exc}") from None
        recorder.clipped = clipped
        return recorder

    def __repr__(self) -> str:
        return f"<LatencyRecorder {self.name!r} count={self.count}>"
