"""The resilient call to the payment service: a deadline per attempt, retries with
backoff on transient failures only, one idempotency key per order, a circuit breaker."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Final, Literal

import httpx

from .models import PaymentDeclined, PaymentUnavailable
from .observability import JsonLogger, Metrics
from .settings import Settings

__all__ = ["CircuitBreaker", "PaymentClient"]

TRANSIENT_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


class CircuitBreaker:
    """Closed; open after ``failures`` failed calls in a row; after ``reset_s`` one trial
    call may pass (half-open): its success closes the circuit, its failure opens it again."""

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> Literal["closed", "open", "half-open"]:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._reset_s else "open"

    def retry_after(self) -> float:
        """Seconds until a trial call may pass (0 when the circuit is not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._reset_s - self._clock())

    def allow(self) -> bool:
        return self.state != "open"

    def succeeded(self) -> None:
        self._failures, self._opened_at = 0, None

    def failed(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()  # a failed trial starts a fresh cool-down


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
        self._settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.payment_url, transport=transport, timeout=settings.payment_timeout_s
        )
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self._metrics = metrics or Metrics()
        self._log = log
        self._sleep = sleep
        self._rng = random.Random()

    async def charge(self, order_id: int, amount: Decimal) -> str:
        """Charge ``amount`` for ``order_id`` at most once; return the charge id.

        ``PaymentDeclined``: the service said no. ``PaymentUnavailable``: no answer
        after every attempt, or the circuit is open (the service was not called).
        """
        if not self.breaker.allow():
            self._count("short_circuit")
            raise PaymentUnavailable("payment circuit open")
        # One key per order, the same on every attempt: a retry after a lost answer
        # finds the first charge instead of making a second one.
        headers = {"Idempotency-Key": f"order-{order_id}"}
        body = {"order_id": order_id, "amount": f"{amount:.2f}"}
        attempts = self._settings.payment_attempts
        for attempt in range(1, attempts + 1):
            reason = await self._attempt(headers, body)
            if isinstance(reason, str) and reason.startswith("charge:"):
                self.breaker.succeeded()
                return reason.removeprefix("charge:")
            if reason == "declined":
                self.breaker.succeeded()  # the service answered: it is healthy
                raise PaymentDeclined(f"order {order_id}: payment declined")
            if reason == "rejected":
                self.breaker.succeeded()
                raise PaymentUnavailable(f"order {order_id}: the payment service rejected the request")
            if attempt < attempts:
                if self._log is not None:
                    self._log.warning("payment_retry", order_id=order_id, attempt=attempt, reason=reason)
                # Full jitter: clients that failed together do not retry together.
                cap = self._settings.payment_backoff_s * 2 ** (attempt - 1)
                await self._sleep(self._rng.uniform(0, cap))
        self.breaker.failed()
        raise PaymentUnavailable(f"order {order_id}: no answer from the payment service")

    async def _attempt(self, headers: dict[str, str], body: dict[str, object]) -> str:
        try:
            # A wall-clock deadline: httpx's timeouts are per read, and in-process
            # transports do not apply them at all.
            async with asyncio.timeout(self._settings.payment_timeout_s):
                response = await self._client.post("/charges", json=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            self._count("error")
            return "timeout"
        except httpx.TransportError:
            self._count("error")
            return "connection"
        if response.status_code in (200, 201):
            self._count("ok")
            return "charge:" + str(response.json()["charge_id"])
        if response.status_code == 402:
            self._count("declined")
            return "declined"
        if response.status_code in TRANSIENT_STATUSES:
            self._count("error")
            return f"status {response.status_code}"
        self._count("rejected")  # another 4xx: our request is wrong, repeating it cannot help
        return "rejected"

    def _count(self, outcome: str) -> None:
        self._metrics.payment_requests.labels(outcome).inc()

    async def aclose(self) -> None:
        await self._client.aclose()
