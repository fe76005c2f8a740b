"""Unit tests of the reference pipeline: no services, fakes behind explicit seams."""

from __future__ import annotations
