"""Given: a fake payment service with faults you can inject, and its client-side wiring.

``POST /charges`` with a JSON body ``{"order_id": 7, "amount": "12.50"}`` and an
``Idempotency-Key`` header charges once per key: a repeated key gets the first
charge back (200) instead of a second one (201). The charge is stored *before* the
answer is sent, so a request that times out on the client side may still have
charged: only the key makes a retry safe.

Faults, each for the next ``n`` requests: ``fail_next(n, status)`` (e.g. 503),
``hang_next(n, seconds)`` (charges, then answers late), ``decline_next(n)`` (402);
``down = True`` answers 503 to everything until set back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["Charge", "FakePaymentService"]


@dataclass(frozen=True)
class Charge:
    charge_id: str
    order_id: int
    amount: Decimal


@dataclass
class FakePaymentService:
    """An in-process payment service; ``transport()`` connects an httpx client to it."""

    down: bool = False
    requests: int = 0  # every request that reached the service
    charges: dict[str, Charge] = field(default_factory=dict)  # by idempotency key
    keys_seen: list[str] = field(default_factory=list)
    _faults: deque[tuple[str, float]] = field(default_factory=deque)

    def fail_next(self, n: int, status: int = 503) -> None:
        self._faults.extend([("fail", float(status))] * n)

    def hang_next(self, n: int, seconds: float) -> None:
        self._faults.extend([("hang", seconds)] * n)

    def decline_next(self, n: int = 1) -> None:
        self._faults.extend([("decline", 0.0)] * n)

    @property
    def charged_orders(self) -> list[int]:
        """The order id of every charge made, once per charge (a double charge shows twice)."""
        return sorted(charge.order_id for charge in self.charges.values())

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self.app())

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/charges", self._charge, methods=["POST"])])

    async def _charge(self, request: Request) -> JSONResponse:
        self.requests += 1
        fault, value = self._faults.popleft() if self._faults else ("", 0.0)
        if self.down or fault == "fail":
            status = 503 if self.down else int(value)
            return JSONResponse({"detail": "payment service unavailable"}, status_code=status)
        if fault == "decline":
            return JSONResponse({"detail": "card declined"}, status_code=402)
        key = request.headers.get("Idempotency-Key", "")
        body = await _json(request)
        try:
            order_id, amount = int(body["order_id"]), Decimal(str(body["amount"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return JSONResponse({"detail": "order_id and amount are required"}, status_code=422)
        if not key:
            return JSONResponse({"detail": "Idempotency-Key header is required"}, status_code=400)
        self.keys_seen.append(key)
        existing = self.charges.get(key)
        if existing is None:
            self.charges[key] = existing = Charge(uuid.uuid4().hex, order_id, amount)
            status = 201
        else:
            status = 200
        if fault == "hang":
            await asyncio.sleep(value)  # charged already: only the answer is late
        return JSONResponse(
            {"charge_id": existing.charge_id, "order_id": order_id, "amount": f"{amount:.2f}"},
            status_code=status,
        )


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return {}
