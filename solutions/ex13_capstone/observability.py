"""Structured logs with request ids, RED metrics, and a middleware that ties them together."""

from __future__ import annotations

import json
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any, Final, TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .models import PROBLEM_JSON

__all__ = ["JsonLogger", "Metrics", "ObservabilityMiddleware", "current_request_id"]

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A client's id is kept only if it is short and plain: it ends up in every log line.
_VALID_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SECRET_KEYS: Final = ("password", "token", "authorization", "secret", "cookie")


def current_request_id() -> str | None:
    """The id of the request being served in this context (None outside a request)."""
    return _request_id.get()


class JsonLogger:
    """One JSON object per line: level, event, request_id and the given fields, secrets redacted."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def log(self, level: str, event: str, **fields: Any) -> None:
        record = {"level": level, "event": event, "request_id": current_request_id()}
        for key, value in fields.items():
            secret = any(word in key.lower() for word in _SECRET_KEYS)
            record[key] = "[redacted]" if secret else value
        self._stream.write(json.dumps(record, default=str) + "\n")
        self._stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to answer", ["method", "route"], registry=self.registry
        )
        self.orders_placed = Counter("orders_placed", "Orders paid and confirmed", registry=self.registry)
        self.payment_requests = Counter(
            "payment_requests", "Calls to the payment service by outcome", ["outcome"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_template(scope: Scope) -> str:
    # The template ("/orders/{order_id}"), never the raw path: one series per route,
    # not one per order id.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Gives every request an id (the client's X-Request-ID if plain, else a new one),
    echoes it, logs one ``request`` line and counts the request, errors included."""

    def __init__(self, app: ASGIApp, *, log: JsonLogger, metrics: Metrics) -> None:
        self.app = app
        self.log = log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Logged with the request id, answered as a problem without internals.
            self.log.error("unhandled_error", error=type(exc).__name__, path=scope["path"])
            status = 500
            if not response_started:
                await _internal_error(scope, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope["method"], _route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(elapsed)
            self.log.info(
                "request", method=method, route=route, status=status, duration_ms=round(elapsed * 1000, 2)
            )
            _request_id.reset(token)


async def _internal_error(scope: Scope, send: Send) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": "Internal Server Error", "status": 500,
         "detail": "The server could not answer this request.", "instance": scope["path"]}
    ).encode()  # fmt: skip
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
