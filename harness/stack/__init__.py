"""The "db" role: start and stop the services a scenario runs against.

>>> from harness.stack import StackConfig, start_stack
>>> with start_stack(StackConfig(provider="embedded")) as stack:  # doctest: +SKIP
...     stack.postgres.dsn, stack.redis.url
"""

from harness.stack._process import reap_leftovers
from harness.stack.app import DEFAULT_TOKEN_SECRET, AppProcesses, AppSpec
from harness.stack.config import PROVIDERS, SERVICES, ProviderName, ServiceName, StackConfig
from harness.stack.core import Stack, choose_providers, start_stack
from harness.stack.databases import DatabaseFactory, TemplateRegistry
from harness.stack.endpoints import PostgresEndpoint, RedisEndpoint

__all__ = [
    "DEFAULT_TOKEN_SECRET",
    "PROVIDERS",
    "SERVICES",
    "AppProcesses",
    "AppSpec",
    "DatabaseFactory",
    "PostgresEndpoint",
    "ProviderName",
    "RedisEndpoint",
    "ServiceName",
    "Stack",
    "StackConfig",
    "TemplateRegistry",
    "choose_providers",
    "reap_leftovers",
    "start_stack",
]
