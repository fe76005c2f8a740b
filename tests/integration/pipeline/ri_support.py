"""Types shared by the reference pipeline's integration tests and their fixtures."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI

from reference_impl import AppConfig, issue_token


@dataclasses.dataclass
class Api:
    """An in-process client of a running app (lifespan started)."""

    app: FastAPI
    http: httpx.AsyncClient
    config: AppConfig

    def auth(self, user_id: int) -> dict[str, str]:
        token = issue_token(user_id, secret=self.config.token_secret)
        return {"Authorization": f"Bearer {token}"}

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


StartApi = Callable[..., Awaitable[Api]]
"""``await start_api(flaws=..., hooks=..., **config_changes)`` -> a started Api."""
