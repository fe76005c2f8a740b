"""The error types alertbench raises on purpose.

Every error a user can cause (a bad flag, a bad environment variable, a
provider that is not installed) is raised as one of these, with a message that
names the problem and, where there is one, the fix. Anything else escaping the
harness is a bug in the harness.
"""

from __future__ import annotations

__all__ = ["AlertbenchError", "ConfigError", "StackStartError", "StackUnavailable"]


class AlertbenchError(Exception):
    """Base class of the errors alertbench raises deliberately."""


class ConfigError(AlertbenchError, ValueError):
    """A configuration value (flag, environment variable, file key) is invalid.

    The message names the setting and says what was expected.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class StackUnavailable(AlertbenchError):
    """A stack provider cannot be used on this machine.

    The message says what is missing and how to get it.
    """

    def __init__(self, provider: str, missing: str, remedy: str) -> None:
        self.provider = provider
        self.missing = missing
        self.remedy = remedy
        super().__init__(f"stack provider {provider!r} is not available: {missing}. {remedy}")


class StackStartError(AlertbenchError):
    """A service of the stack was launched but did not become ready.

    The message carries the tail of the service's own log.
    """
