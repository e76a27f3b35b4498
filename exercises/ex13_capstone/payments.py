"""The call to the payment service (Task 1: a resilient call).

Contract:

- ``PaymentClient.charge(order_id, amount)`` asks the payment service at
  ``settings.payment_url`` (``POST /charges``, JSON ``{"order_id": 7, "amount":
  "12.50"}``, see ``fake_payments``) to charge the order and returns the charge id.
  An order is charged at most once, however often the call is repeated or retried.
- Each attempt ends after ``settings.payment_timeout_s`` seconds of wall-clock time,
  whatever the transport does (in-process transports ignore httpx's timeouts).
- Transient failures (no answer in time, no connection, 429, 500, 502, 503, 504) are
  tried again, up to ``settings.payment_attempts`` attempts in all, with a growing,
  randomised pause (``payment_backoff_s`` scale) between them; anything else is
  final: 402 raises ``PaymentDeclined`` at once, another 4xx ``PaymentUnavailable``.
  When every attempt failed: ``PaymentUnavailable``.
- ``CircuitBreaker``: after ``settings.breaker_failures`` charges in a row that ended
  in ``PaymentUnavailable`` the circuit opens: for ``breaker_reset_s`` seconds,
  ``charge`` raises ``PaymentUnavailable`` without calling the service; then one trial
  call may pass, whose success closes the circuit and whose failure opens it again.
  ``retry_after()`` says how long the circuit stays open (0 when it is not).
- Every attempt is counted in ``metrics.payment_requests`` by outcome (``ok``,
  ``declined``, ``error``, ``rejected``; a refused call while open:
  ``short_circuit``), and every retry is logged (event ``payment_retry``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Literal

import httpx

from .observability import JsonLogger, Metrics
from .settings import Settings

__all__ = ["CircuitBreaker", "PaymentClient"]


class CircuitBreaker:
    """Closed; open after ``failures`` failed calls in a row; half-open after ``reset_s``."""

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        raise NotImplementedError

    @property
    def state(self) -> Literal["closed", "open", "half-open"]:
        raise NotImplementedError

    def retry_after(self) -> float:
        """Seconds until a trial call may pass (0 when the circuit is not open)."""
        raise NotImplementedError

    def allow(self) -> bool:
        """Whether a call may go to the service now."""
        raise NotImplementedError

    def succeeded(self) -> None:
        """The service answered."""
        raise NotImplementedError

    def failed(self) -> None:
        """A call ended without an answer from the service."""
        raise NotImplementedError


class PaymentClient:
    """Charges orders at the payment service (``settings.payment_url``)."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        metrics: Metrics | None = None,
        log: JsonLogger | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        raise NotImplementedError

    async def charge(self, order_id: int, amount: Decimal) -> str:
        """Charge ``amount`` for ``order_id`` at most once; return the charge id."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the HTTP client."""
        raise NotImplementedError
