"""ex11 · A resilient client, a transactional outbox and an idempotent consumer.

The contract is the docstring of ``exercises/ex11_resilience.py``. The client is
tested against in-process services (httpx's ASGITransport, or a MockTransport for
connection errors) that inject faults: transient 503s, 429 with Retry-After,
hanging answers, permanent 4xx. Sleeping and the clock are injected, so backoff
costs no real time. The outbox and the consumer run on the course database
(SQLite, or PostgreSQL when COURSE_DATABASE_URL is set); the end-to-end tests
move the messages through a broker: an in-process stream by default, Redis
Streams with a consumer group when COURSE_REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import Engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError

from coursekit import db, runs
from coursekit.impl import load

ex = load("ex11_resilience")

CONSUMER = "inventory"


class SimulatedCrash(BaseException):
    """The relay process dying: not an Exception, so no ``except Exception`` swallows it."""


# ------------------------------------------------------------------ fakes: clock, sleep, services


class FakeTime:
    """An injected clock and sleep: sleeping advances the clock and is recorded, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FlakyService:
    """An ASGI service that answers from a script, then 200; it counts calls and effects.

    A bare ASGI callable rather than a FastAPI app: the tests need no routing, and
    not importing FastAPI keeps ``check`` quick.
    """

    def __init__(self, script: list[int | str] | None = None, *, retry_after: str | None = None) -> None:
        self.script = list(script or [])
        self.retry_after = retry_after
        self.calls = 0
        self.keys: list[str | None] = []
        self.orders_created = 0
        self.seen_keys: set[str] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.calls += 1
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        key = headers.get("idempotency-key")
        self.keys.append(key)
        more_body = True
        while more_body:  # read the request body, as a server does
            more_body = (await receive()).get("more_body", False)
        if scope["method"] == "POST" and (key is None or key not in self.seen_keys):
            self.orders_created += 1  # the side effect happens before the fault, as in real life
            if key is not None:
                self.seen_keys.add(key)
        outcome = self.script.pop(0) if self.script else 200
        if outcome == "hang":
            await anyio.sleep(30)
            outcome = 200
        assert isinstance(outcome, int)
        response_headers = [(b"content-type", b"application/json")]
        if self.retry_after and outcome in (429, 503):
            response_headers.append((b"retry-after", self.retry_after.encode()))
        await send({"type": "http.response.start", "status": outcome, "headers": response_headers})
        await send({"type": "http.response.body", "body": json.dumps({"status": outcome}).encode()})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self), base_url="http://svc")


def resilient(http: httpx.AsyncClient, fake: FakeTime, **options: Any) -> Any:
    options.setdefault("rng", random.Random(11))
    options.setdefault("attempt_timeout", 0.05)
    return ex.ResilientClient(http, sleep=fake.sleep, clock=fake.clock, **options)


pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------------------- Task 1 · retries


class TestRetries:
    """Task 1: Retries with backoff, only on transient failures."""

    async def test_transient_503s_are_retried_until_success(self) -> None:
        """Two 503s then 200: the caller gets the 200 after three calls."""
        service, fake = FlakyService([503, 503]), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request("GET", "/books/1")
        assert response.status_code == 200
        assert service.calls == 3
        assert len(fake.sleeps) == 2, f"expected a wait before each retry, slept {fake.sleeps}"

    @pytest.mark.parametrize("status", [400, 404, 409, 422])
    async def test_a_permanent_4xx_is_never_retried(self, status: int) -> None:
        """A 400/404/409/422 is returned at once: one call, no wait."""
        service, fake = FlakyService([status]), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request("GET", "/books/1")
        assert service.calls == 1, f"a {status} was sent {service.calls} times: it never becomes right"
        assert (response.status_code, fake.sleeps) == (status, [])

    @pytest.mark.parametrize("status", [502, 504, 429])
    async def test_other_transient_statuses_are_retried(self, status: int) -> None:
        """502, 504 and 429 are transient too: retried until the 200."""
        service, fake = FlakyService([status]), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request("GET", "/books/1")
        assert (response.status_code, service.calls) == (200, 2)

    async def test_a_500_is_not_retried(self) -> None:
        """A 500 (a bug on the server, not a transient state) is returned at once."""
        service, fake = FlakyService([500]), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request("GET", "/books/1")
        assert service.calls == 1, f"a 500 was sent {service.calls} times: a server bug is not transient"
        assert response.status_code == 500

    async def test_attempts_are_bounded(self) -> None:
        """A service that always answers 503: exactly max_attempts calls, the last 503 returned."""
        service, fake = FlakyService([503] * 50), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake, max_attempts=5, total_timeout=1e6).request("GET", "/x")
        assert (response.status_code, service.calls, len(fake.sleeps)) == (503, 5, 4)

    async def test_total_time_is_bounded(self) -> None:
        """Retries stop before the total time budget would be exceeded, whatever max_attempts allows."""
        service, fake = FlakyService([503] * 50), FakeTime()
        client = resilient(http := service.client(), fake, max_attempts=50, base_delay=0.5, max_delay=1.0)
        async with http:
            response = await client.request("GET", "/x")
        assert response.status_code == 503
        assert sum(fake.sleeps) <= 5.0, f"slept {sum(fake.sleeps):.2f} s in all, budget 5 s"
        assert service.calls < 50, "the total time budget never stopped the retries"

    async def test_post_without_idempotency_key_is_not_retried(self) -> None:
        """A POST without an idempotency key that gets a 503 is not sent again (it may have acted)."""
        service, fake = FlakyService([503]), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request("POST", "/orders", json={"book_id": 1})
        assert (response.status_code, service.calls, service.orders_created) == (503, 1, 1)

    async def test_post_with_idempotency_key_is_retried_with_the_same_key(self) -> None:
        """A POST with an idempotency key is retried, every attempt carrying that same key: one order."""
        service, fake = FlakyService([503, 503]), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request(
                "POST", "/orders", json={"book_id": 1}, idempotency_key="order-7f3a"
            )
        assert (response.status_code, service.calls) == (200, 3)
        assert service.keys == ["order-7f3a"] * 3
        assert service.orders_created == 1

    async def test_backoff_is_exponential_with_full_jitter(self) -> None:
        """Waits are random in [0, min(max_delay, base_delay * 2**(n-1))] and grow with the retry number n."""
        fake = FakeTime()
        by_retry: dict[int, list[float]] = {1: [], 2: [], 3: [], 4: [], 5: []}
        transport = httpx.MockTransport(lambda request: httpx.Response(503))  # cheaper than an app
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            client = resilient(http, fake, max_attempts=6, base_delay=0.1, max_delay=1.0, total_timeout=1e6)
            for _ in range(30):
                fake.sleeps.clear()
                await client.request("GET", "/x")
                assert len(fake.sleeps) == 5, f"expected 5 waits for 5 retries, got {fake.sleeps}"
                for retry, delay in enumerate(fake.sleeps, start=1):
                    by_retry[retry].append(delay)
        for retry, delays in by_retry.items():
            cap = min(1.0, 0.1 * 2 ** (retry - 1))
            assert all(0 <= d <= cap + 1e-9 for d in delays), (
                f"retry {retry}: a wait above its cap {cap}: {max(delays)}"
            )
            assert len(set(delays)) > 20, (
                f"retry {retry}: waits are not random (jitter): {sorted(set(delays))[:5]}"
            )
            assert max(delays) > 0.6 * cap, f"retry {retry}: waits never come near the cap {cap}"

    async def test_retry_after_is_honoured(self) -> None:
        """A 429 with Retry-After: 2 makes the client wait 2 s before the next attempt."""
        service, fake = FlakyService([429], retry_after="2"), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake).request("GET", "/x")
        assert (response.status_code, fake.sleeps) == (200, [2.0])

    async def test_retry_after_beyond_the_budget_gives_up_at_once(self) -> None:
        """A Retry-After longer than the time left returns that response at once, without sleeping."""
        service, fake = FlakyService([503], retry_after="120"), FakeTime()
        async with service.client() as http:
            response = await resilient(http, fake, total_timeout=5.0).request("GET", "/x")
        assert (response.status_code, service.calls, fake.sleeps) == (503, 1, [])

    async def test_a_hanging_get_times_out_and_is_retried(self) -> None:
        """An answer slower than attempt_timeout is abandoned and the GET retried."""
        service, fake = FlakyService(["hang"]), FakeTime()
        async with service.client() as http:
            with anyio.fail_after(3):
                response = await resilient(http, fake, attempt_timeout=0.05).request("GET", "/x")
        assert (response.status_code, service.calls) == (200, 2)

    async def test_timeouts_on_every_attempt_raise_an_httpx_timeout(self) -> None:
        """When every attempt hangs, the caller gets an httpx.TimeoutException after max_attempts tries."""
        service, fake = FlakyService(["hang"] * 3), FakeTime()
        async with service.client() as http:
            with anyio.fail_after(3), pytest.raises(httpx.TimeoutException):
                await resilient(http, fake, max_attempts=3, attempt_timeout=0.02).request("GET", "/x")
        assert service.calls == 3

    async def test_a_timed_out_post_without_key_is_not_retried(self) -> None:
        """A POST without a key that times out raises at once: it may have been applied."""
        service, fake = FlakyService(["hang"]), FakeTime()
        async with service.client() as http:
            with anyio.fail_after(3), pytest.raises(httpx.TimeoutException):
                await resilient(http, fake).request("POST", "/orders", json={})
        assert service.calls == 1

    async def test_connect_errors_are_retried_even_for_post(self) -> None:
        """A connection that never opened is retried, POST included: nothing reached the server."""
        attempts = itertools.count(1)

        def handler(request: httpx.Request) -> httpx.Response:
            if next(attempts) <= 2:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(201, json={"id": 1})

        fake = FakeTime()
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://svc") as http:
            response = await resilient(http, fake).request("POST", "/orders", json={})
        assert (response.status_code, next(attempts) - 1) == (201, 3)


# ---------------------------------------------------------------------------- Task 2 · breaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


async def fail() -> None:
    raise httpx.ConnectError("down")


async def succeed() -> str:
    return "ok"


async def trip(breaker: Any, times: int) -> None:
    for _ in range(times):
        with pytest.raises(httpx.ConnectError):
            await breaker.call(fail)


class TestCircuitBreaker:
    """Task 2: A circuit breaker: closed, open, half-open."""

    async def test_opens_after_consecutive_failures_and_fails_fast(self) -> None:
        """After failure_threshold consecutive failures it is open and refuses calls without making them."""
        breaker = ex.CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=FakeClock())
        await trip(breaker, 2)
        assert breaker.state == "closed"
        await trip(breaker, 1)
        assert breaker.state == "open"
        calls = 0

        async def counted() -> str:
            nonlocal calls
            calls += 1
            return "ok"

        with pytest.raises(ex.CircuitOpenError):
            await breaker.call(counted)
        assert calls == 0

    async def test_a_success_resets_the_count(self) -> None:
        """Failures separated by successes never open it: only consecutive failures count."""
        breaker = ex.CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=FakeClock())
        for _ in range(5):
            await trip(breaker, 2)
            assert await breaker.call(succeed) == "ok"
        assert breaker.state == "closed"

    async def test_a_result_judged_failed_counts_as_a_failure(self) -> None:
        """Results for which ``failed`` is true count as failures, and are still returned."""
        breaker = ex.CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=FakeClock())
        results = [await breaker.call(succeed, failed=lambda r: r == "ok") for _ in range(2)]
        assert results == ["ok", "ok"]
        assert breaker.state == "open"

    async def test_half_open_after_the_cool_down_and_closes_on_a_good_probe(self) -> None:
        """Open until reset_timeout has passed, then half-open; a successful probe closes it."""
        clock = FakeClock()
        breaker = ex.CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
        await trip(breaker, 1)
        clock.now += 9.9
        assert breaker.state == "open"
        clock.now += 0.1
        assert breaker.state == "half-open"
        assert await breaker.call(succeed) == "ok"
        assert breaker.state == "closed"

    async def test_a_failed_probe_opens_it_again_for_a_full_cool_down(self) -> None:
        """A failed probe opens it again at once, for a whole new reset_timeout."""
        clock = FakeClock()
        breaker = ex.CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
        await trip(breaker, 3)
        clock.now += 15
        await trip(breaker, 1)
        assert breaker.state == "open", f"right after a failed probe the state is {breaker.state!r}"
        clock.now += 9
        assert breaker.state == "open", "9 s after a failed probe (reset_timeout 10 s) it is no longer open"
        clock.now += 1
        assert breaker.state == "half-open"

    async def test_only_one_probe_at_a_time(self) -> None:
        """Half-open lets one probe through; callers arriving while it runs are refused at once."""
        clock = FakeClock()
        breaker = ex.CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
        await trip(breaker, 1)
        clock.now += 10
        release = asyncio.Event()
        probes = 0

        async def slow_probe() -> str:
            nonlocal probes
            probes += 1
            await release.wait()
            return "ok"

        outcomes: list[str] = []
        four_answered = asyncio.Event()

        async def caller() -> None:
            try:
                outcomes.append(await breaker.call(slow_probe))
            except ex.CircuitOpenError:
                outcomes.append("refused")
            if len(outcomes) == 4:
                four_answered.set()

        async with asyncio.timeout(3), asyncio.TaskGroup() as group:
            for _ in range(5):
                group.create_task(caller())
            await four_answered.wait()  # four refused while the probe still runs
            release.set()
        assert probes == 1
        assert sorted(outcomes) == ["ok"] + ["refused"] * 4
        assert breaker.state == "closed"

    async def test_a_cancelled_probe_does_not_wedge_the_breaker(self) -> None:
        """A probe cancelled by its caller (a timeout) does not leave the breaker refusing forever."""
        clock = FakeClock()
        breaker = ex.CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
        await trip(breaker, 1)
        clock.now += 10

        async def hang() -> str:
            await asyncio.sleep(30)
            return "late"

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await breaker.call(hang)
        clock.now += 10
        assert await breaker.call(succeed) == "ok"
        assert breaker.state == "closed"

    async def test_the_client_fails_fast_through_an_open_breaker(self) -> None:
        """Through the client: 503s open the breaker, then calls raise CircuitOpenError without a request."""
        service, fake = FlakyService([503] * 50), FakeTime()
        breaker = ex.CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=fake.clock)
        async with service.client() as http:
            client = resilient(http, fake, breaker=breaker, max_attempts=3, total_timeout=1e6)
            assert (await client.request("GET", "/x")).status_code == 503
            assert service.calls == 3
            assert breaker.state == "open"
            with pytest.raises(ex.CircuitOpenError):
                await client.request("GET", "/x")
        assert service.calls == 3

    async def test_client_errors_do_not_open_the_breaker(self) -> None:
        """4xx answers mean the service works: any number of them leave the breaker closed."""
        service, fake = FlakyService([404] * 10), FakeTime()
        breaker = ex.CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=fake.clock)
        async with service.client() as http:
            client = resilient(http, fake, breaker=breaker)
            statuses = [(await client.request("GET", "/x")).status_code for _ in range(10)]
        assert statuses == [404] * 10
        assert breaker.state == "closed"


# ----------------------------------------------------------------------------- database fixtures


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = db.fresh_engine("ex11", pool_size=8, max_overflow=4)
    if engine.dialect.name == "sqlite":
        # A scratch file: a process crash loses nothing without fsync (only a power cut
        # would), and skipping fsync on every commit keeps the fast stage fast.
        event.listen(
            engine, "connect", lambda connection, _record: connection.execute("PRAGMA synchronous=OFF")
        )
    ex.setup_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clean(engine: Engine) -> Engine:
    with engine.begin() as connection:
        for table in (ex.ProcessedMessage, ex.OutboxEvent, ex.Order):
            connection.execute(delete(table))
        connection.execute(update(ex.Inventory).values(reserved=0))
    return engine


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def reserved(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        return dict(connection.execute(select(ex.Inventory.book_id, ex.Inventory.reserved)).all())  # type: ignore[arg-type]


class Broker:
    """Records what was published; can fail before delivering or crash right after delivering."""

    def __init__(self, *, fail_at: int | None = None, crash_after: int | None = None) -> None:
        self.messages: list[Any] = []
        self.fail_at = fail_at
        self.crash_after = crash_after

    def publish(self, message: Any) -> None:
        if self.fail_at is not None and len(self.messages) + 1 == self.fail_at:
            self.fail_at = None
            raise ConnectionError("broker unreachable")
        self.messages.append(message)
        if self.crash_after is not None and len(self.messages) == self.crash_after:
            self.crash_after = None
            raise SimulatedCrash("relay killed after publishing")


@pytest.fixture
def fail_on_insert_into(engine: Engine) -> Iterator[Callable[[str], None]]:
    """Make the next INSERT into a given table fail, inside whatever transaction runs it."""
    targets: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        for table in list(targets):
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE")) and table in statement:
                targets.remove(table)
                raise RuntimeError(f"injected failure writing {table}")

    event.listen(engine, "before_cursor_execute", before)
    yield targets.append
    event.remove(engine, "before_cursor_execute", before)


# ----------------------------------------------------------------------------- Task 3 · outbox


@pytest.mark.db
class TestOutbox:
    """Task 3: A transactional outbox and its relay."""

    def test_the_order_and_its_event_are_stored_together(self, clean: Engine) -> None:
        """place_order stores the order and one unsent order-placed event naming it."""
        order_id = ex.place_order(clean, 2, 3)
        with clean.connect() as connection:
            events = connection.execute(select(ex.OutboxEvent)).all()
        assert len(events) == 1
        event_row = events[0]
        assert (event_row.topic, event_row.sent_at) == ("order-placed", None)
        assert event_row.payload == {"order_id": order_id, "book_id": 2, "quantity": 3}

    def test_no_order_without_its_event(
        self, clean: Engine, fail_on_insert_into: Callable[[str], None]
    ) -> None:
        """When writing the event fails, the order is not stored either (one transaction)."""
        fail_on_insert_into("ex11_outbox")
        with pytest.raises(Exception, match="injected failure"):
            ex.place_order(clean, 1, 1)
        assert (count(clean, ex.Order), count(clean, ex.OutboxEvent)) == (0, 0)

    def test_no_event_without_its_order(self, clean: Engine) -> None:
        """An order the database refuses (quantity 0) leaves no event behind."""
        with pytest.raises((IntegrityError, ValueError)):
            ex.place_order(clean, 1, 0)
        assert (count(clean, ex.Order), count(clean, ex.OutboxEvent)) == (0, 0)

    def test_the_relay_publishes_each_event_once_in_order(self, clean: Engine) -> None:
        """The relay publishes unsent events oldest first, marks them sent, and a second run publishes none."""
        ids = [ex.place_order(clean, 1 + i % 3, 1) for i in range(5)]
        broker = Broker()
        assert ex.relay_once(clean, broker.publish) == 5
        assert [m.payload["order_id"] for m in broker.messages] == ids
        assert len({m.message_id for m in broker.messages}) == 5
        assert ex.relay_once(clean, broker.publish) == 0
        assert len(broker.messages) == 5

    def test_the_relay_respects_its_batch_size(self, clean: Engine) -> None:
        """relay_once publishes at most batch_size events; the next run takes the next ones."""
        for _ in range(5):
            ex.place_order(clean, 1, 1)
        broker = Broker()
        assert ex.relay_once(clean, broker.publish, batch_size=2) == 2
        assert ex.relay_once(clean, broker.publish, batch_size=2) == 2
        assert ex.relay_once(clean, broker.publish, batch_size=2) == 1
        assert len({m.message_id for m in broker.messages}) == 5

    def test_a_failed_publish_loses_nothing(self, clean: Engine) -> None:
        """A publish that fails leaves its event unsent: the next run publishes it."""
        for _ in range(3):
            ex.place_order(clean, 1, 1)
        broker = Broker(fail_at=2)
        with pytest.raises(ConnectionError):
            ex.relay_once(clean, broker.publish)
        ex.relay_once(clean, broker.publish)
        assert len({m.message_id for m in broker.messages}) == 3

    def test_a_crash_between_publish_and_mark_sent_publishes_again(self, clean: Engine) -> None:
        """A relay killed after publishing but before marking it sent: the event is published again, none lost."""
        for _ in range(3):
            ex.place_order(clean, 1, 1)
        broker = Broker(crash_after=2)
        with pytest.raises(SimulatedCrash):
            ex.relay_once(clean, broker.publish)
        ex.relay_once(clean, broker.publish)
        distinct = {m.message_id for m in broker.messages}
        assert len(distinct) == 3, "an event was lost"
        assert len(broker.messages) > 3, "the crashed event was not published again"
        with clean.connect() as connection:
            unsent = connection.execute(
                select(func.count()).where(ex.OutboxEvent.sent_at.is_(None))
            ).scalar_one()
        assert unsent == 0

    @pytest.mark.deep
    def test_concurrent_relays_never_publish_one_event_twice(self, clean: Engine) -> None:
        """Four relays running at once (threads, own connections) publish every event exactly once."""
        for i in range(40):
            ex.place_order(clean, 1 + i % 3, 1)
        published: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def publish(message: Any) -> None:
            with lock:
                published.append(message.message_id)
            threading.Event().wait(0.002)  # a broker round trip: the window for a second relay

        def relay() -> None:
            try:
                barrier.wait()
                while ex.relay_once(clean, publish, batch_size=5):
                    pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=relay) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, f"a relay failed: {errors[0]!r}"
        assert len(set(published)) == 40, f"only {len(set(published))} of 40 events published"
        assert len(published) == 40, f"{len(published)} publications for 40 events"


# ---------------------------------------------------------------------------- Task 4 · consumer


def order_message(book_id: int = 1, quantity: int = 2, message_id: str | None = None) -> Any:
    return ex.Message(
        message_id or f"m-{random.random()}",
        "order-placed",
        {"order_id": 1, "book_id": book_id, "quantity": quantity},
    )


@pytest.mark.db
class TestConsumer:
    """Task 4: An idempotent consumer."""

    def test_a_message_is_applied_once(self, clean: Engine) -> None:
        """handle_message applies a new message (True) and ignores its redelivery (False)."""
        message = order_message(book_id=2, quantity=3)
        assert ex.handle_message(clean, CONSUMER, message) is True
        assert ex.handle_message(clean, CONSUMER, message) is False
        assert reserved(clean)[2] == 3

    def test_distinct_messages_are_all_applied(self, clean: Engine) -> None:
        """Different message ids with the same content are different orders: each is applied."""
        for i in range(4):
            assert ex.handle_message(clean, CONSUMER, order_message(quantity=1, message_id=f"id-{i}")) is True
        assert reserved(clean)[1] == 4

    def test_consumers_dedupe_separately(self, clean: Engine) -> None:
        """The same message handled by two different consumers is applied by each (dedupe is per consumer)."""
        message = order_message(quantity=1)
        assert ex.handle_message(clean, "inventory", message) is True
        assert ex.handle_message(clean, "analytics", message) is True
        assert reserved(clean)[1] == 2

    def test_a_failed_effect_is_not_remembered(
        self, clean: Engine, fail_on_insert_into: Callable[[str], None]
    ) -> None:
        """When applying fails, the message is not marked processed: its redelivery is applied."""
        message = order_message(quantity=2)
        fail_on_insert_into("ex11_inventory")
        with pytest.raises(Exception, match="injected failure"):
            ex.handle_message(clean, CONSUMER, message)
        assert ex.handle_message(clean, CONSUMER, message) is True
        assert reserved(clean)[1] == 2

    @pytest.mark.deep
    def test_concurrent_duplicates_are_applied_once(self, clean: Engine) -> None:
        """The same message delivered to 6 workers at once (threads, own connections) is applied once."""
        for round_number in range(5):
            message = order_message(quantity=1, message_id=f"dup-{round_number}")
            barrier = threading.Barrier(6)
            results: list[Any] = []

            def work(
                barrier: threading.Barrier = barrier, message: Any = message, results: list[Any] = results
            ) -> None:
                barrier.wait()
                try:
                    results.append(ex.handle_message(clean, CONSUMER, message))
                except BaseException as exc:
                    results.append(exc)

            threads = [threading.Thread(target=work) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert sorted(map(repr, results)) == ["False"] * 5 + ["True"], results
        assert reserved(clean)[1] == 5

    @pytest.mark.deep
    def test_concurrent_different_messages_all_count(self, clean: Engine) -> None:
        """Eight different messages for one book handled at once (threads) reserve all eight copies."""
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def work(number: int) -> None:
            barrier.wait()
            try:
                ex.handle_message(clean, CONSUMER, order_message(quantity=1, message_id=f"distinct-{number}"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, f"a worker failed: {errors[0]!r}"
        assert reserved(clean)[1] == 8, "a concurrent update was lost"


# ------------------------------------------------------------------- end to end through a broker


class MemoryStream:
    """An in-process stand-in for one Redis stream with one consumer group (XADD, XREADGROUP,
    XACK, XAUTOCLAIM): delivered entries stay pending until acknowledged."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, str]]] = []
        self.next_index = 0
        self.pending: dict[str, str] = {}  # entry id -> consumer

    def add(self, fields: dict[str, str]) -> None:
        self.entries.append((f"{len(self.entries) + 1}-0", fields))

    def read(self, consumer: str, count: int) -> list[tuple[str, dict[str, str]]]:
        batch = self.entries[self.next_index : self.next_index + count]
        self.next_index += len(batch)
        self.pending.update((entry_id, consumer) for entry_id, _ in batch)
        return batch

    def ack(self, entry_id: str) -> None:
        self.pending.pop(entry_id, None)

    def claim(self, consumer: str) -> list[tuple[str, dict[str, str]]]:
        claimed = [(entry_id, fields) for entry_id, fields in self.entries if entry_id in self.pending]
        self.pending.update((entry_id, consumer) for entry_id, _ in claimed)
        return claimed

    def close(self) -> None:
        pass


class RedisStream:
    """The same five operations on a real Redis stream and consumer group."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.key = f"course:{runs.learner_name()}:{runs.run_id()}:ex11:{random.getrandbits(32):08x}"
        self.group = "inventory"
        self.client.xgroup_create(self.key, self.group, id="0", mkstream=True)

    def add(self, fields: dict[str, str]) -> None:
        self.client.xadd(self.key, fields)  # type: ignore[arg-type]

    def read(self, consumer: str, count: int) -> list[tuple[str, dict[str, str]]]:
        answer = self.client.xreadgroup(self.group, consumer, {self.key: ">"}, count=count)
        return [(entry_id, fields) for _, entries in answer for entry_id, fields in entries]  # type: ignore[union-attr]

    def ack(self, entry_id: str) -> None:
        self.client.xack(self.key, self.group, entry_id)

    def claim(self, consumer: str) -> list[tuple[str, dict[str, str]]]:
        _next, claimed, _deleted = self.client.xautoclaim(
            self.key, self.group, consumer, min_idle_time=0, count=100
        )  # type: ignore[misc]
        return list(claimed)

    def close(self) -> None:
        self.client.delete(self.key)
        self.client.close()


@pytest.fixture
def stream() -> Iterator[Any]:
    url = os.environ.get("COURSE_REDIS_URL", "").strip()
    broker = RedisStream(url) if url else MemoryStream()
    yield broker
    broker.close()


@pytest.mark.db
@pytest.mark.redis
class TestEndToEnd:
    """Task 4: An idempotent consumer."""

    @pytest.mark.deep
    def test_crashes_on_both_sides_lose_nothing_and_apply_nothing_twice(
        self, clean: Engine, stream: Any
    ) -> None:
        """Relay crash after publish + consumer crash before ack: every order reserved exactly once."""
        orders = [(1 + i % 3, 1 + i % 4) for i in range(12)]
        for book_id, quantity in orders:
            ex.place_order(clean, book_id, quantity)

        publications = itertools.count(1)

        def publish(message: Any) -> None:
            stream.add(
                {"id": message.message_id, "topic": message.topic, "payload": json.dumps(message.payload)}
            )
            if next(publications) == 7:
                raise SimulatedCrash("relay killed after its 7th publish")

        with pytest.raises(SimulatedCrash):
            ex.relay_once(clean, publish, batch_size=100)
        while ex.relay_once(clean, publish, batch_size=5):
            pass

        def to_message(fields: dict[str, str]) -> Any:
            return ex.Message(fields["id"], fields["topic"], json.loads(fields["payload"]))

        # Consumer A handles a batch, then dies before acknowledging it.
        for _entry_id, fields in stream.read("consumer-a", 5):
            ex.handle_message(clean, CONSUMER, to_message(fields))
        # Consumer B claims A's pending entries and reads the rest, acknowledging each.
        applied = 0
        for entry_id, fields in stream.claim("consumer-b") + stream.read("consumer-b", 100):
            applied += ex.handle_message(clean, CONSUMER, to_message(fields))
            stream.ack(entry_id)

        expected = {book: 0 for book in (1, 2, 3)}
        for book_id, quantity in orders:
            expected[book_id] += quantity
        assert reserved(clean) == expected
        assert count(clean, ex.ProcessedMessage) == 12
