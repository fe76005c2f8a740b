"""Scenario suites, one module per scenario family (load, faults, delivery, ...)."""
