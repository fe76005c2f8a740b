"""reference_impl: the system under test of alertbench, an asyncio alert pipeline.

Public surface (the pipeline contract: docs/contract.md):

- ``AppConfig`` and ``Flaw`` / ``parse_flaws``: what to run, and which seed
  defects to switch on;
- ``create_app(config)``: the HTTP API (an ASGI app); ``create_asgi_app(config)``: it
  with Socket.IO mounted; ``run(config)``: serve that (with a queue worker and
  the relay) under uvicorn; ``python -m reference_impl`` does the same;
- ``migrate`` / ``migrate_dsn``: the schema (``--migrate-only`` on the command line);
- ``issue_token``: bearer tokens for simulated users;
- ``NOTIFY_CHANNEL``: the Postgres channel the real-time relay LISTENs on.
"""

from reference_impl.alerts import NOTIFY_CHANNEL, Alert, AlertEmitter
from reference_impl.app import create_app, create_asgi_app
from reference_impl.auth import AuthError, issue_token, verify_token
from reference_impl.completion import CompletionHooks, CompletionResult, complete_line_item
from reference_impl.config import AppConfig, ConfigError
from reference_impl.flaws import ALL_FLAWS, Flaw, FlawError, parse_flaws
from reference_impl.generation import GenerationResult, generate_alerts
from reference_impl.runtime import Runtime
from reference_impl.schema import metadata, migrate, migrate_dsn
from reference_impl.serve import ServeError, run, run_worker, serve

__all__ = [
    "ALL_FLAWS",
    "NOTIFY_CHANNEL",
    "Alert",
    "AlertEmitter",
    "AppConfig",
    "AuthError",
    "CompletionHooks",
    "CompletionResult",
    "ConfigError",
    "Flaw",
    "FlawError",
    "GenerationResult",
    "Runtime",
    "ServeError",
    "complete_line_item",
    "create_app",
    "create_asgi_app",
    "generate_alerts",
    "issue_token",
    "metadata",
    "migrate",
    "migrate_dsn",
    "parse_flaws",
    "run",
    "run_worker",
    "serve",
    "verify_token",
]
