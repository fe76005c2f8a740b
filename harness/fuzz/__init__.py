"""Attacks on a target through the contract: HTTP fuzzing and Socket.IO fuzzing.

- :mod:`harness.fuzz.api`: schemathesis over the contract's OpenAPI document;
- :mod:`harness.fuzz.realtime`: Hypothesis strategies of malformed, oversized,
  unknown and unauthorised Socket.IO events, and the attacker that sends them;
- :mod:`harness.fuzz.tokens`: tampered, expired and malformed credentials.

The ``security`` scenario (``scenarios/security.py``) puts them together.
"""
