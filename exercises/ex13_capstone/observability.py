"""Structured logs with request ids, RED metrics, the middleware that ties them (Task 4).

Contract:

- ``JsonLogger(stream)`` writes one JSON object per line: ``level``, ``event``,
  ``request_id`` (of the request being served, None outside one) and the given
  fields. A field whose name speaks of a secret (password, token, authorization,
  secret, cookie) is never written as it is.
- ``current_request_id()`` is the id of the request being served in this context.
- ``Metrics`` keeps the service's Prometheus metrics in a registry of its own (two
  apps in one process never share counts): ``http_requests_total`` by ``method``,
  ``route`` (the route's template, e.g. ``/orders/{order_id}``, never the raw path)
  and ``status``; ``http_request_duration_seconds`` (a histogram) by ``method`` and
  ``route``; ``orders_placed_total`` (paid orders); ``payment_requests_total`` by
  ``outcome``. ``render()`` is the text page ``GET /metrics`` serves.
- ``ObservabilityMiddleware`` (ASGI): every request gets an id, the client's
  ``X-Request-ID`` when it is plain and short (letters, digits, ``.``, ``_``, ``-``;
  at most 64) or a new one otherwise; the answer carries it in ``X-Request-ID``;
  every log line written while serving the request carries it; one ``request``
  line (``method``, ``route``, ``status``, ``duration_ms``) and the metrics count
  every request, failed ones included. An unexpected error is logged at level
  ``error`` and answered as a 500 problem that reveals nothing of the internals.
"""

from __future__ import annotations

from typing import Any, TextIO

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["JsonLogger", "Metrics", "ObservabilityMiddleware", "current_request_id"]


def current_request_id() -> str | None:
    """The id of the request being served in this context (None outside a request)."""
    raise NotImplementedError


class JsonLogger:
    """One JSON object per line: level, event, request_id and the given fields, secrets redacted."""

    def __init__(self, stream: TextIO) -> None:
        raise NotImplementedError

    def log(self, level: str, event: str, **fields: Any) -> None:
        raise NotImplementedError

    def info(self, event: str, **fields: Any) -> None:
        raise NotImplementedError

    def warning(self, event: str, **fields: Any) -> None:
        raise NotImplementedError

    def error(self, event: str, **fields: Any) -> None:
        raise NotImplementedError


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        raise NotImplementedError

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        raise NotImplementedError


class ObservabilityMiddleware:
    """Request ids, one access log line and the request metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, *, log: JsonLogger, metrics: Metrics) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
