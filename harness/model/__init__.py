"""Models of what a conforming target does, for tests and checkers to compare
a target's behaviour with (``docs/contract.md``)."""

from harness.model.workflow import Completion, ModelAlert, ModelError, Trackers, Workflow

__all__ = ["Completion", "ModelAlert", "ModelError", "Trackers", "Workflow"]
