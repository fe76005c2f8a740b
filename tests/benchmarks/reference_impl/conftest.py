"""Benchmarks of the reference pipeline (pytest-benchmark) on the real stack."""

from __future__ import annotations

import sys
from pathlib import Path

# These test folders are named ``reference_impl`` and pytest's default
# ("prepend") import mode puts their parents on sys.path, where the folder
# would shadow the real package as an empty namespace package. Put the
# project root first so ``import reference_impl`` finds the package.
_ROOT = str(Path(__file__).resolve().parents[3])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("reference_impl"), "__file__", "") is None:
    del sys.modules["reference_impl"]
