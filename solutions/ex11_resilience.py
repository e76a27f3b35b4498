"""A resilient client, a transactional outbox and an idempotent consumer

Reference solution. The contract is stated in ``exercises/ex11_resilience.py``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

import httpx
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = [
    "Base",
    "CircuitBreaker",
    "CircuitOpenError",
    "Inventory",
    "Message",
    "Order",
    "OutboxEvent",
    "ProcessedMessage",
    "ResilientClient",
    "handle_message",
    "place_order",
    "relay_once",
    "setup_database",
]

T = TypeVar("T")
State = Literal["closed", "open", "half-open"]

# ----------------------------------------------------------------------------- given

ORDER_PLACED: Final = "order-placed"


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "ex11_orders"
    __table_args__ = (CheckConstraint("quantity > 0", name="ex11_quantity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("ex11_inventory.book_id"))
    quantity: Mapped[int]


class OutboxEvent(Base):
    __tablename__ = "ex11_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # publication order
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Inventory(Base):
    """The consumer's own state: copies reserved for placed orders, per book."""

    __tablename__ = "ex11_inventory"

    book_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reserved: Mapped[int] = mapped_column(default=0)


class ProcessedMessage(Base):
    __tablename__ = "ex11_processed_messages"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)


@dataclass(frozen=True)
class Message:
    """What travels through the broker."""

    message_id: str
    topic: str
    payload: dict[str, Any]


class CircuitOpenError(Exception):
    """The breaker refused the call: the service was not called."""


def setup_database(engine: Engine, books: int = 3) -> None:
    """Create the tables; books 1..books get an inventory row with nothing reserved."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add_all(Inventory(book_id=book_id, reserved=0) for book_id in range(1, books + 1))


# ----------------------------------------------------------------------- Task 2 · breaker


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures -> half-open after
    ``reset_timeout`` seconds (one probe) -> closed on its success, open on its failure."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout < 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout >= 0")
        self._threshold = failure_threshold
        self._reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._reset_timeout:
            return "half-open"
        return "open"

    async def call(
        self, operation: Callable[[], Awaitable[T]], *, failed: Callable[[T], bool] | None = None
    ) -> T:
        state = self.state
        if state == "open" or (state == "half-open" and self._probe_in_flight):
            raise CircuitOpenError(f"circuit {state}: call refused without reaching the service")
        is_probe = state == "half-open"
        # Claimed before the first await: no other task runs in between, so one probe only.
        self._probe_in_flight = is_probe
        try:
            result = await operation()
        except BaseException:  # cancelled probes too: otherwise half-open would wait forever
            self._record(success=False)
            raise
        finally:
            if is_probe:
                self._probe_in_flight = False
        self._record(success=failed is None or not failed(result))
        return result

    def _record(self, *, success: bool) -> None:
        if success:
            self._failures = 0
            self._opened_at = None
            return
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()  # a failed probe starts a fresh cool-down


# ----------------------------------------------------------------------- Task 1 · retries

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


def _retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        seconds = float(raw)
    except ValueError:
        return None  # absent, or an HTTP date: fall back to our own backoff
    return seconds if seconds >= 0 else None


class ResilientClient:
    """Calls another service over ``client`` with timeouts, retries and a breaker."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        breaker: CircuitBreaker | None = None,
        max_attempts: int = 4,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        attempt_timeout: float = 1.0,
        total_timeout: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._client = client
        self._breaker = breaker
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._attempt_timeout = attempt_timeout
        self._total_timeout = total_timeout
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        method = method.upper()
        all_headers = dict(headers or {})
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key  # the same key on every attempt
        retry_safe = method in IDEMPOTENT_METHODS or idempotency_key is not None
        deadline = self._clock() + self._total_timeout

        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._attempt(method, url, json, all_headers)
            except httpx.ConnectError:
                # Nothing reached the server, so even a POST without a key is safe to resend.
                if attempt == self._max_attempts or not await self._wait(self._backoff(attempt), deadline):
                    raise
                continue
            except httpx.TimeoutException:
                # The server may have acted on it: resend only what is safe to repeat.
                if not retry_safe or attempt == self._max_attempts:
                    raise
                if not await self._wait(self._backoff(attempt), deadline):
                    raise
                continue
            if (
                not retry_safe
                or response.status_code not in RETRYABLE_STATUSES
                or attempt == self._max_attempts
            ):
                return response
            delay = self._backoff(attempt)
            retry_after = _retry_after_seconds(response)
            if response.status_code in RETRY_AFTER_STATUSES and retry_after is not None:
                delay = retry_after  # the server knows when it will be back; "0" included
            if not await self._wait(delay, deadline):
                return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, method: str, url: str, json: Any, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            try:
                # asyncio's timeout as well as httpx's: in-process transports ignore httpx's.
                async with asyncio.timeout(self._attempt_timeout):
                    return await self._client.request(
                        method, url, json=json, headers=headers, timeout=self._attempt_timeout
                    )
            except TimeoutError:
                raise httpx.ReadTimeout(f"no answer within {self._attempt_timeout} s") from None

        if self._breaker is None:
            return await send()
        return await self._breaker.call(send, failed=lambda response: response.status_code >= 500)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] spreads synchronized clients."""
        return self._rng.uniform(0, min(self._max_delay, self._base_delay * 2 ** (attempt - 1)))

    async def _wait(self, delay: float, deadline: float) -> bool:
        """Sleep before the next attempt; False (no sleep) when that would pass the deadline."""
        if self._clock() + delay > deadline:
            return False
        await self._sleep(delay)
        return True


# ------------------------------------------------------------------------ Task 3 · outbox


def place_order(engine: Engine, book_id: int, quantity: int) -> int:
    """Store the order and its ``order-placed`` event in one transaction; return the order id."""
    with Session(engine) as session, session.begin():
        order = Order(book_id=book_id, quantity=quantity)
        session.add(order)
        session.flush()  # assigns order.id for the event's payload
        session.add(
            OutboxEvent(
                message_id=str(uuid.uuid4()),
                topic=ORDER_PLACED,
                payload={"order_id": order.id, "book_id": book_id, "quantity": quantity},
            )
        )
        return order.id


def relay_once(engine: Engine, publish: Callable[[Message], None], *, batch_size: int = 100) -> int:
    """Publish up to ``batch_size`` unsent events in ``id`` order, mark each sent; return the count."""
    published = 0
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "sqlite":
            # SQLite ignores FOR UPDATE; taking its write lock first serialises the relays instead.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        rows = connection.execute(
            select(OutboxEvent.id, OutboxEvent.message_id, OutboxEvent.topic, OutboxEvent.payload)
            .where(OutboxEvent.sent_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)  # PostgreSQL: other relays skip what we hold
        ).all()
        for row in rows:
            publish(Message(row.message_id, row.topic, row.payload))
            # Marked after the publish: a crash in between re-sends (at-least-once), never loses.
            connection.execute(
                update(OutboxEvent).where(OutboxEvent.id == row.id).values(sent_at=datetime.now(UTC))
            )
            published += 1
    return published


# ---------------------------------------------------------------------- Task 4 · consumer


def handle_message(engine: Engine, consumer: str, message: Message) -> bool:
    """Apply ``message`` for ``consumer`` once: True when applied now, False for a duplicate."""
    try:
        with engine.begin() as connection:
            # The dedupe row first, in the effect's transaction: a concurrent duplicate waits
            # on the unique key and then fails, instead of both passing a "seen?" check.
            connection.execute(
                insert(ProcessedMessage).values(consumer=consumer, message_id=message.message_id)
            )
            payload = message.payload
            connection.execute(
                update(Inventory)
                .where(Inventory.book_id == payload["book_id"])
                .values(reserved=Inventory.reserved + payload["quantity"])
            )
    except IntegrityError:
        return False
    return True
