"""The orders service's HTTP API (every task meets here). The spec is the package docstring."""

from __future__ import annotations

from typing import TextIO

import httpx
from fastapi import FastAPI

from .settings import Settings

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    payments: httpx.AsyncBaseTransport | None = None,
    log_stream: TextIO | None = None,
) -> FastAPI:
    """The orders service for the prepared database ``settings.database``.

    ``payments``: how to reach the payment service (e.g. a fake's transport);
    ``log_stream``: where the JSON log lines go (standard error by default).
    ``app.state.engine`` is the app's ``AsyncEngine`` (``database.open_engine``);
    the lifespan opens what the app needs and closes it all again.
    """
    raise NotImplementedError
