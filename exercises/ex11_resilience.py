"""A resilient client, a transactional outbox and an idempotent consumer

The orders service calls the catalog and payments services over HTTP and tells
the inventory service about every order through a broker. Networks drop
connections, services restart (503), throttle (429) and hang; a process can die
between any two lines. Make the calls resilient and the events reliable. This
docstring is the contract: ``tests/exercises/test_ex11_resilience.py`` checks it,
one test class per task. ``check("ex11")`` shows which tasks pass; ``hint("ex11")``
helps with the first open one.

Given: the tables (``Order``, ``OutboxEvent``, ``Inventory``,
``ProcessedMessage``; ``setup_database`` creates them), ``Message`` and
``CircuitOpenError``. The database is SQLite, or PostgreSQL when
COURSE_DATABASE_URL is set; the code runs unchanged on both.

Task 1 · ResilientClient.request(method, url, *, json, headers, idempotency_key)
    Sends one logical request through ``client`` (an ``httpx.AsyncClient``) and
    returns the final ``httpx.Response``, or raises the final httpx error.
    - Every attempt ends within ``attempt_timeout`` seconds; an attempt that
      did not answer in time is an ``httpx.TimeoutException`` (httpx's own
      timeouts do not apply to every transport: its in-process ASGITransport
      ignores them).
    - Transient failures are: a connection that could not be opened
      (``httpx.ConnectError``), a timeout, and the statuses 429, 502, 503, 504.
      Anything else is the answer: a 2xx, any other 4xx (400, 404, 409, 422: the
      request itself is wrong and stays wrong), a 500 (a bug, not a state that
      passes) are returned at once.
    - A request is *safe to repeat* when its method is GET, HEAD, OPTIONS, PUT or
      DELETE, or when it carries an idempotency key (sent as the
      ``Idempotency-Key`` header, the same on every attempt, so the server
      applies it once). A transient failure of a request safe to repeat is
      retried; of any other request (a POST without a key) it is returned or
      raised at once, since the server may already have acted on it, except a
      ConnectError: then nothing reached the server.
    - At most ``max_attempts`` attempts. Before retry number n (n = 1, 2, ...)
      the client waits a random time, uniform in
      [0, min(max_delay, base_delay * 2**(n-1))], drawn from ``rng``: "full
      jitter" (clients that failed together do not come back together). A 429 or
      503 with ``Retry-After: <seconds>`` is waited out for exactly that time
      instead.
    - All waiting fits in ``total_timeout`` seconds, measured on ``clock``: when
      the next wait would end past ``total_timeout`` after the request started,
      the client stops without waiting and returns the last response (or raises
      the last error).
    - Waiting uses ``sleep`` and time is read from ``clock`` (tests inject
      both), never ``time`` or ``asyncio`` directly.
    - With a ``breaker``, every attempt goes through ``breaker.call``: a 5xx
      answer, a timeout or a connection error counts as a failure, a 4xx (the
      service answered) as a success. While the breaker refuses, ``request``
      raises ``CircuitOpenError`` at once: no request, no wait.

Task 2 · CircuitBreaker(*, failure_threshold, reset_timeout, clock)
    ``await breaker.call(operation, failed=None)`` awaits ``operation()`` and
    returns its result (or re-raises its exception), or raises
    ``CircuitOpenError`` without calling it. ``state`` is "closed", "open" or
    "half-open", read at the time ``clock()`` says.
    - closed: calls go through. An exception, or a result for which
      ``failed(result)`` is true (when ``failed`` is given; the result is still
      returned), is a failure;
      any other result is a success and forgets earlier failures.
      ``failure_threshold`` consecutive failures open the breaker.
    - open: every call is refused until ``reset_timeout`` seconds have passed
      since it opened; then it is half-open.
    - half-open: exactly one call, the probe, goes through; calls arriving while
      the probe is in flight are refused at once. A successful probe closes the
      breaker; a failed one opens it again for a whole new ``reset_timeout``.
      A probe that never finishes because its caller gave up (cancelled, e.g. by
      a timeout) must not leave the breaker refusing forever.
    - Many tasks call one breaker concurrently on one event loop.

Task 3 · Outbox: place_order(engine, book_id, quantity) and relay_once(engine, publish, *, batch_size)
    - ``place_order`` stores an ``Order`` and returns its id. The inventory
      service must hear of every stored order and of no other: the order and an
      ``OutboxEvent`` (a new unique ``message_id``, topic "order-placed",
      payload ``{"order_id", "book_id", "quantity"}``, not sent) exist together
      or not at all. The database refuses a quantity below 1.
    - ``relay_once`` publishes up to ``batch_size`` unsent events, oldest (lowest
      ``id``) first, each as a ``Message`` passed to ``publish``, records each
      one as sent (``sent_at``) and returns how many it published. An event
      whose publish raised stays unsent, and the exception propagates.
    - The relay can die at any line (a ``BaseException`` out of ``publish``, a
      SIGKILL). No event may ever be lost; an event published but not yet
      recorded as sent when the relay died is published again by the next run
      (at-least-once delivery).
    - Several relays may run at once, each with its own connections; none may
      publish an event another one is publishing. PostgreSQL row locks are
      taken by ``SELECT ... FOR UPDATE``; SQLite ignores ``FOR UPDATE`` and has
      one writer at a time for the whole database, taken at a transaction's
      first write (or at once by ``BEGIN IMMEDIATE``).

Task 4 · Idempotent consumer: handle_message(engine, consumer, message) -> bool
    Applies an "order-placed" message for ``consumer``: adds the payload's
    ``quantity`` to ``Inventory.reserved`` of its ``book_id``. Returns True when
    applied now, False for a message this consumer already applied (no effect).
    Deliveries are at-least-once: the same message may arrive twice, even at the
    same moment to two workers (a redelivery while the first is still at work);
    its effect must happen exactly once per consumer. A failure while applying
    leaves no trace, so a redelivery applies it. ``ProcessedMessage`` has the
    primary key (consumer, message_id).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import httpx
from sqlalchemy import JSON, CheckConstraint, DateTime, Engine, ForeignKey, Integer, String
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


# ------------------------------------------------------------------------ yours from here


class CircuitBreaker:
    """Closed, open, half-open: see Task 2 in the module docstring."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        raise NotImplementedError("Task 2: CircuitBreaker")

    @property
    def state(self) -> State:
        raise NotImplementedError("Task 2: CircuitBreaker.state")

    async def call(
        self, operation: Callable[[], Awaitable[T]], *, failed: Callable[[T], bool] | None = None
    ) -> T:
        raise NotImplementedError("Task 2: CircuitBreaker.call")


class ResilientClient:
    """Timeouts, retries with backoff and a breaker: see Task 1 in the module docstring."""

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
        self.client = client

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        raise NotImplementedError("Task 1: ResilientClient.request")


def place_order(engine: Engine, book_id: int, quantity: int) -> int:
    """Store the order and its order-placed event (Task 3); return the order id."""
    raise NotImplementedError("Task 3: place_order")


def relay_once(engine: Engine, publish: Callable[[Message], None], *, batch_size: int = 100) -> int:
    """Publish up to batch_size unsent events, oldest first (Task 3); return how many."""
    raise NotImplementedError("Task 3: relay_once")


def handle_message(engine: Engine, consumer: str, message: Message) -> bool:
    """Apply message once for consumer (Task 4): True when applied now, False for a duplicate."""
    raise NotImplementedError("Task 4: handle_message")
