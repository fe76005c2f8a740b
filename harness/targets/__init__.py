"""What is under test: the reference, a command the harness starts, or a URL.

``load_target("reference")`` or ``load_target("path/to/target.toml")``; see
:mod:`harness.targets.model` for the file format and ``docs/targets.md``.
"""

from harness.targets.model import (
    CAPABILITIES,
    CLIENT_FLAWS,
    KINDS,
    CommandSpec,
    Target,
    UrlSpec,
    load_target,
)

__all__ = [
    "CAPABILITIES",
    "CLIENT_FLAWS",
    "KINDS",
    "CommandSpec",
    "Target",
    "UrlSpec",
    "load_target",
]
