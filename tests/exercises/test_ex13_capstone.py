"""Grading suite for ex13, the capstone: a production-ready orders service.

One class per graded section (``python -m coursekit grade 13`` prints a score per
section): functionality, security, concurrency, observability, performance. The
service is tested in-process (``httpx.ASGITransport``) against a prepared database
and an in-process fake payment service with injected faults; the deep tests race
real buyers (in one event loop, and across two uvicorn worker processes sharing one
database) and run a short locust load test against the served app.

Every answer is checked against the database itself (stock, orders, hashes), so the
service's behaviour is graded, not its code.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from coursekit import db, paths
from coursekit.impl import current_impl, load
from coursekit.querycount import count_queries

ex = load("ex13_capstone")

pytestmark = [pytest.mark.db, pytest.mark.anyio]

DATABASE = "ex13t"
SERVED = f"{current_impl()}.ex13_capstone.server:serve"
LOCUSTFILE = paths.ROOT / "tests" / "exercises" / "ex13_load" / "locustfile.py"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}
# Cheap argon2 for tests (the defaults cost ~25 ms a hash); fast retries and deadlines.
FAST = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "payment_timeout_s": 0.3,
    "payment_backoff_s": 0.005,
    "jwt_secret": "test-secret-for-the-capstone-grading-suite",
}
# Books set aside for tests that change the stock, so tests stay independent.
P95_BUDGET_MS = 1000  # generous: the reference answers in under 100 ms at p95 on an idle laptop
RACE_BOOK, SEQUENTIAL_BOOK, OUT_OF_STOCK_BOOK, DECLINE_BOOK = 45, 44, 43, 42
LEFT_BOOK, RIGHT_BOOK, PROCESS_BOOK, OUTAGE_BOOK = 46, 47, 48, 49


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def settings() -> Any:
    chosen = ex.Settings(database=DATABASE, **FAST)
    ex.prepare_database(chosen)
    return chosen


@pytest.fixture(scope="module")
def engine(settings: Any) -> Iterator[Engine]:
    """A plain engine on the service's database: the tests' own view of the truth."""
    checker = db.make_engine(settings.database)
    yield checker
    checker.dispose()


@dataclass
class Service:
    app: FastAPI
    http: httpx.AsyncClient
    payments: Any  # FakePaymentService
    log: io.StringIO

    @property
    def engine(self) -> AsyncEngine:
        found = self.app.state.engine
        assert isinstance(found, AsyncEngine), "app.state.engine must be the app's AsyncEngine"
        return found

    def log_lines(self) -> list[dict[str, Any]]:
        lines = [line for line in self.log.getvalue().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    async def login(self, username: str, password: str | None = None) -> dict[str, str]:
        answer = await self.http.post(
            "/token", data={"username": username, "password": password or ex.SEED_PASSWORD}
        )
        assert answer.status_code == 200, f"login as {username}: {answer.status_code} {answer.text[:200]}"
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def order(self, headers: dict[str, str], lines: dict[int, int]) -> httpx.Response:
        body = {"lines": [{"book_id": book, "quantity": quantity} for book, quantity in lines.items()]}
        return await self.http.post("/orders", json=body, headers=headers)


@pytest.fixture
async def service(settings: Any) -> AsyncIterator[Service]:
    """A fresh app (its own limiter, metrics and log) on the module's database."""
    payments = ex.FakePaymentService()
    log = io.StringIO()
    app = ex.create_app(settings, payments=payments.transport(), log_stream=log)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
            yield Service(app, http, payments, log)


def set_stock(engine: Engine, book_id: int, quantity: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE stock SET quantity = :q WHERE book_id = :b"), {"q": quantity, "b": book_id}
        )


def stock_of(engine: Engine, book_id: int) -> int:
    with engine.connect() as connection:
        found = connection.scalar(text("SELECT quantity FROM stock WHERE book_id = :b"), {"b": book_id})
    return int(found)


def sold(engine: Engine, book_id: int) -> int:
    """Copies of a book in orders that are not cancelled, from the order lines."""
    with engine.connect() as connection:
        found = connection.scalar(
            text(
                "SELECT COALESCE(SUM(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id "
                "WHERE l.book_id = :b AND o.status <> 'cancelled'"
            ),
            {"b": book_id},
        )
    return int(found)


def user_id(engine: Engine, username: str) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT id FROM users WHERE username = :u"), {"u": username}))


def price_of(engine: Engine, book_id: int) -> Decimal:
    with engine.connect() as connection:
        return Decimal(str(connection.scalar(text("SELECT price FROM books WHERE id = :b"), {"b": book_id})))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:300]}"
    )
    assert response.headers.get("content-type", "").startswith("application/problem+json"), (
        f"a {status} must be application/problem+json, got {response.headers.get('content-type')}"
    )
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS, f"problem fields missing: {sorted(PROBLEM_FIELDS - set(body))}"
    assert body["status"] == status
    return body


def forged(claims: dict[str, Any], key: str = "", algorithm: str = "HS256") -> str:
    if algorithm == "none":
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{payload}."
    return jwt.encode(claims, key, algorithm=algorithm)


def claims_for(settings: Any, subject: int, role: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": str(subject), "role": role, "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
              "iat": now, "exp": now + 300}  # fmt: skip
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metric(service_metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text page (0 when absent)."""
    for family in text_string_to_metric_families(service_metrics):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def add_orders(engine: Engine, customer: int, count: int) -> list[int]:
    """Paid orders (books 20 and 21) written straight to the database: quick, and many."""
    added = []
    with engine.begin() as connection:
        for _ in range(count):
            order_id = connection.execute(
                text(
                    "INSERT INTO orders (customer_id, status, total) VALUES (:c, 'paid', 10.00) RETURNING id"
                ),
                {"c": customer},
            ).scalar_one()
            added.append(int(order_id))
            connection.execute(
                text(
                    "INSERT INTO order_lines (order_id, book_id, quantity, unit_price) VALUES (:o, :b, 1, 5.00)"
                ),
                [{"o": order_id, "b": book} for book in (20, 21)],
            )
    return added


@contextmanager
def database_down(engine: AsyncEngine) -> Iterator[None]:
    """Every new connection fails, as if the database server were gone."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("connect", {}, ConnectionRefusedError("database is down"))

    event.listen(engine.sync_engine, "do_connect", refuse)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "do_connect", refuse)


# ------------------------------------------------------------------ Task 1: functionality
class TestTask1Functionality:
    """Task 1: Functionality."""

    @pytest.mark.time_limit(30)
    async def test_an_order_is_placed_paid_and_priced_from_the_catalog(
        self, service: Service, engine: Engine
    ) -> None:
        """POST /orders: 201, status paid, Location, unit prices and total from the catalog, stock taken."""
        headers = await service.login("reader01")
        before = {book: stock_of(engine, book) for book in (3, 7)}
        answer = await service.order(headers, {7: 2, 3: 1})
        assert answer.status_code == 201, answer.text[:300]
        order = answer.json()
        assert answer.headers.get("location") == f"/orders/{order['id']}"
        assert order["status"] == "paid"
        assert order["customer_id"] == user_id(engine, "reader01")
        assert order["lines"] == [
            {"book_id": 3, "quantity": 1, "unit_price": f"{price_of(engine, 3):.2f}"},
            {"book_id": 7, "quantity": 2, "unit_price": f"{price_of(engine, 7):.2f}"},
        ]
        assert order["total"] == f"{price_of(engine, 3) + 2 * price_of(engine, 7):.2f}"
        assert {book: stock_of(engine, book) for book in (3, 7)} == {3: before[3] - 1, 7: before[7] - 2}
        assert service.payments.charged_orders == [order["id"]], "the order was not charged exactly once"
        again = await service.http.get(f"/orders/{order['id']}", headers=headers)
        assert again.status_code == 200
        assert again.json() == order

    async def test_orders_come_newest_first_in_cursor_pages(self, service: Service, engine: Engine) -> None:
        """GET /orders pages a customer's orders newest first; following next_cursor lists each once."""
        headers = await service.login("reader02")
        placed = add_orders(engine, user_id(engine, "reader02"), 4)
        answer = await service.order(headers, {1: 1})
        assert answer.status_code == 201, answer.text[:300]
        placed.append(answer.json()["id"])
        seen: list[int] = []
        cursor: str | None = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await service.http.get("/orders", params=params, headers=headers)
            assert page.status_code == 200, page.text[:300]
            body = page.json()
            assert len(body["items"]) <= 2
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen[:5] == sorted(placed, reverse=True), f"pages listed {seen}"
        assert len(seen) == len(set(seen)), "an order was listed twice"

    async def test_the_catalog_pages_cover_every_book_once(self, service: Service, engine: Engine) -> None:
        """GET /books (public) pages the catalog by cursor: every book once, with price and stock."""
        seen = []
        cursor: str | None = None
        for _ in range(20):
            answer = await service.http.get(
                "/books", params={"limit": 20} | ({"cursor": cursor} if cursor else {})
            )
            assert answer.status_code == 200, answer.text[:300]
            seen += answer.json()["items"]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        assert [book["id"] for book in seen] == list(range(1, 51))
        assert seen[9]["price"] == f"{price_of(engine, 10):.2f}"
        assert seen[9]["in_stock"] == stock_of(engine, 10)

    async def test_out_of_stock_is_a_409_and_changes_nothing(self, service: Service, engine: Engine) -> None:
        """More copies than in stock: a 409 problem, and no line of the order takes any stock."""
        set_stock(engine, OUT_OF_STOCK_BOOK, 3)
        headers = await service.login("reader03")
        other = stock_of(engine, 11)
        assert_problem(await service.order(headers, {OUT_OF_STOCK_BOOK: 4}), 409)
        assert_problem(await service.order(headers, {11: 2, OUT_OF_STOCK_BOOK: 4}), 409)
        assert (stock_of(engine, OUT_OF_STOCK_BOOK), stock_of(engine, 11)) == (3, other)
        assert service.payments.requests == 0, "a refused order must not reach the payment service"

    async def test_every_error_is_a_problem_detail(self, service: Service) -> None:
        """400, 401, 404 and 422 answers share the RFC 9457 problem shape."""
        staff = await service.login(ex.STAFF)
        customer = await service.login("reader04")
        assert_problem(await service.http.get("/orders/999999", headers=staff), 404)
        assert_problem(await service.http.get("/orders"), 401)
        assert_problem(
            await service.http.get("/orders", params={"cursor": "not-a-cursor"}, headers=staff), 400
        )
        assert_problem(await service.http.get("/orders", params={"limit": 1000}, headers=staff), 422)
        assert_problem(await service.order(customer, {1: 0}), 422)
        assert_problem(await service.order(customer, {9999: 1}), 422)
        assert_problem(await service.http.post("/orders", json={"lines": []}, headers=customer), 422)
        assert_problem(await service.http.post("/orders", content=b"{", headers=customer), 422)

    async def test_a_declined_payment_cancels_the_order_and_returns_the_stock(
        self, service: Service, engine: Engine
    ) -> None:
        """A declined payment: a 402 problem, the order kept as cancelled, its copies back in stock."""
        headers = await service.login("reader05")
        before = stock_of(engine, DECLINE_BOOK)
        service.payments.decline_next(1)
        assert_problem(await service.order(headers, {DECLINE_BOOK: 2}), 402)
        assert service.payments.requests == 1, "a declined payment is a final answer: no retry"
        assert stock_of(engine, DECLINE_BOOK) == before
        listed = (await service.http.get("/orders", headers=headers)).json()["items"]
        assert [o["status"] for o in listed if o["lines"][0]["book_id"] == DECLINE_BOOK] == ["cancelled"]

    async def test_transient_payment_failures_are_retried_with_one_key(self, service: Service) -> None:
        """Two 503s from the payment service, then success: a 201, charged once, one idempotency key."""
        headers = await service.login("reader23")
        service.payments.fail_next(2, 503)
        answer = await service.order(headers, {26: 1})
        assert answer.status_code == 201, answer.text[:300]
        assert service.payments.requests == 3, f"{service.payments.requests} payment calls (expected 3)"
        assert service.payments.charged_orders == [answer.json()["id"]]
        assert len(set(service.payments.keys_seen)) == 1

    @pytest.mark.deep
    async def test_a_lost_payment_answer_is_retried_without_charging_twice(self, service: Service) -> None:
        """A charge whose answer comes too late is retried with the same key: one charge, a 201."""
        headers = await service.login("reader24")
        service.payments.hang_next(1, 2.0)
        started = time.perf_counter()
        answer = await service.order(headers, {27: 1})
        assert answer.status_code == 201, answer.text[:300]
        assert time.perf_counter() - started < 1.5, "the client waited past its deadline for the slow answer"
        assert service.payments.charged_orders == [answer.json()["id"]], "charged twice (or not at all)"

    async def test_the_circuit_opens_after_repeated_payment_outages(self, settings: Any) -> None:
        """After breaker_failures failed charges in a row, orders get a 503 with Retry-After without a call."""
        payments = ex.FakePaymentService(down=True)
        tight = dataclasses.replace(settings, breaker_failures=2, breaker_reset_s=60.0)
        app = ex.create_app(tight, payments=payments.transport(), log_stream=io.StringIO())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
                service = Service(app, http, payments, io.StringIO())
                headers = await service.login("reader12")
                for _ in range(2):
                    assert_problem(await service.order(headers, {28: 1}), 503)
                calls = payments.requests
                assert calls == 2 * tight.payment_attempts, f"{calls} calls for 2 orders (retries?)"
                refused = await service.order(headers, {28: 1})
                assert_problem(refused, 503)
                assert payments.requests == calls, "the open circuit still called the payment service"
                retry_after = refused.headers.get("retry-after", "")
                assert retry_after.isdigit(), f"Retry-After: {retry_after!r} (whole seconds)"
                assert 1 <= int(retry_after) <= 60

    async def test_staff_ship_paid_orders_once(self, service: Service) -> None:
        """POST /orders/{id}/ship (staff): a paid order ships (200); shipping it again is a 409 problem."""
        customer = await service.login("reader06")
        staff = await service.login(ex.STAFF)
        placed = (await service.order(customer, {12: 1})).json()
        shipped = await service.http.post(f"/orders/{placed['id']}/ship", headers=staff)
        assert shipped.status_code == 200, shipped.text[:300]
        assert shipped.json()["status"] == "shipped"
        assert_problem(await service.http.post(f"/orders/{placed['id']}/ship", headers=staff), 409)
        assert_problem(await service.http.post("/orders/999999/ship", headers=staff), 404)


# ----------------------------------------------------------------------- Task 2: security
class TestTask2Security:
    """Task 2: Security."""

    async def test_passwords_are_stored_as_salted_argon2id(self, settings: Any, engine: Engine) -> None:
        """Stored hashes are argon2id, salted (same password, different hashes) and verifiable."""
        with engine.connect() as connection:
            hashes = connection.scalars(text("SELECT password_hash FROM users ORDER BY id")).all()
        assert all(h.startswith("$argon2id$") for h in hashes), f"not argon2id: {hashes[0][:20]}"
        assert len(set(hashes)) == len(hashes), "equal passwords must get different (salted) hashes"
        assert ex.verify_password(settings, ex.SEED_PASSWORD, hashes[0])
        assert not ex.verify_password(settings, ex.SEED_PASSWORD + "!", hashes[0])

    async def test_forged_and_expired_tokens_are_refused(self, service: Service, settings: Any) -> None:
        """alg none, a wrong key, a tampered payload, expired, wrong audience or issuer, no exp: all 401."""
        staff_id = 1
        good = claims_for(settings, staff_id, "staff")
        real = (await service.login("reader07"))["Authorization"].removeprefix("Bearer ")
        head, payload, signature = real.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        tampered_payload = base64.urlsafe_b64encode(json.dumps({**claims, "role": "staff"}).encode())
        attacks = {
            "alg none": forged(good, algorithm="none"),
            "wrong key": forged(good, "an-attacker-s-guess-at-the-secret-key-32b"),
            "tampered": f"{head}.{tampered_payload.rstrip(b'=').decode()}.{signature}",
            "expired": forged(
                claims_for(settings, staff_id, "staff", exp=int(time.time()) - 60), settings.jwt_secret
            ),
            "audience": forged(
                claims_for(settings, staff_id, "staff", aud="another-api"), settings.jwt_secret
            ),
            "issuer": forged(
                claims_for(settings, staff_id, "staff", iss="https://evil.example"), settings.jwt_secret
            ),
            "no exp": forged(claims_for(settings, staff_id, "staff", exp=None), settings.jwt_secret),
            "garbage": "not.a.token",
        }
        for attack, token in attacks.items():
            answer = await service.http.get("/orders", headers=bearer(token))
            assert answer.status_code == 401, f"{attack}: got {answer.status_code}, expected 401"
            assert_problem(answer, 401)
            assert "bearer" in answer.headers.get("www-authenticate", "").lower()
        valid = forged(good, settings.jwt_secret)
        assert (await service.http.get("/orders", headers=bearer(valid))).status_code == 200

    async def test_another_customers_order_is_not_found(self, service: Service) -> None:
        """A customer asking for someone else's order gets the same 404 as for no order at all."""
        owner = await service.login("reader08")
        intruder = await service.login("reader09")
        order = (await service.order(owner, {13: 1})).json()
        theirs = assert_problem(await service.http.get(f"/orders/{order['id']}", headers=intruder), 404)
        nothing = assert_problem(await service.http.get("/orders/999998", headers=intruder), 404)
        assert theirs["title"] == nothing["title"]
        listed = (await service.http.get("/orders", params={"limit": 100}, headers=intruder)).json()["items"]
        assert order["id"] not in [item["id"] for item in listed], "another customer's order was listed"
        staff = await service.login(ex.STAFF)
        assert (await service.http.get(f"/orders/{order['id']}", headers=staff)).status_code == 200

    async def test_customers_cannot_act_as_staff(
        self, service: Service, settings: Any, engine: Engine
    ) -> None:
        """A customer cannot ship (403), nor claim the staff role in a token signed with another key (401)."""
        customer = await service.login("reader10")
        order = (await service.order(customer, {14: 1})).json()
        assert_problem(await service.http.post(f"/orders/{order['id']}/ship", headers=customer), 403)
        escalated = forged(
            claims_for(settings, user_id(engine, "reader10"), "staff"), "not-the-server-key-0123456789abcdef"
        )
        assert_problem(await service.http.post(f"/orders/{order['id']}/ship", headers=bearer(escalated)), 401)
        staff = await service.login(ex.STAFF)
        assert_problem(await service.order(staff, {14: 1}), 403)

    async def test_mass_assignment_is_refused(self, service: Service, engine: Engine) -> None:
        """Fields a customer may not set (customer_id, status, unit_price, total) are a 422, nothing placed."""
        customer = await service.login("reader11")
        before = stock_of(engine, 15)
        line = {"book_id": 15, "quantity": 1}
        for body in (
            {"lines": [line], "customer_id": user_id(engine, "reader12")},
            {"lines": [line], "status": "shipped"},
            {"lines": [line], "total": "0.01"},
            {"lines": [{**line, "unit_price": "0.01"}]},
        ):
            assert_problem(await service.http.post("/orders", json=body, headers=customer), 422)
        assert stock_of(engine, 15) == before

    async def test_logins_do_not_reveal_who_exists(self, service: Service) -> None:
        """A wrong password and an unknown username get the same 401 problem."""
        wrong = await service.http.post("/token", data={"username": "reader13", "password": "guess"})
        unknown = await service.http.post("/token", data={"username": "nobody-here", "password": "guess"})
        assert_problem(wrong, 401)
        assert wrong.json() == assert_problem(unknown, 401)

    async def test_brute_force_is_rate_limited(self, service: Service) -> None:
        """Five failed logins for one user: the next attempt, even right, is a 429 with Retry-After."""
        for _ in range(5):
            assert_problem(
                await service.http.post("/token", data={"username": "reader14", "password": "x"}), 401
            )
        limited = await service.http.post(
            "/token", data={"username": "reader14", "password": ex.SEED_PASSWORD}
        )
        assert_problem(limited, 429)
        retry_after = limited.headers.get("retry-after", "")
        assert retry_after.isdigit(), f"Retry-After: {retry_after!r} (whole seconds)"
        assert 1 <= int(retry_after) <= 60, f"Retry-After: {retry_after!r}"
        await service.login("reader15")  # another user is not locked out

    async def test_secrets_never_reach_the_logs(self, service: Service) -> None:
        """Neither a password nor a token appears in the log lines."""
        headers = await service.login("reader16")
        await service.http.post("/token", data={"username": "reader16", "password": "my-secret-guess"})
        await service.http.get("/orders", headers=headers)
        logged = service.log.getvalue()
        token = headers["Authorization"].removeprefix("Bearer ")
        for secret in (ex.SEED_PASSWORD, "my-secret-guess", token):
            assert secret not in logged, "a secret was written to the logs"


# -------------------------------------------------------------------- Task 3: concurrency
async def race(service: Service, buyers: list[dict[str, str]], lines: list[dict[int, int]]) -> list[int]:
    answers = await asyncio.gather(*(service.order(h, order) for h, order in zip(buyers, lines, strict=True)))
    return [answer.status_code for answer in answers]


class TestTask3Concurrency:
    """Task 3: Concurrency."""

    async def test_sequential_buyers_empty_the_shelf_exactly(self, service: Service, engine: Engine) -> None:
        """Two copies, three buyers one after another: 201, 201, then a 409; the stock ends at 0."""
        set_stock(engine, SEQUENTIAL_BOOK, 2)
        headers = await service.login("reader17")
        statuses = [(await service.order(headers, {SEQUENTIAL_BOOK: 1})).status_code for _ in range(3)]
        assert statuses == [201, 201, 409]
        assert stock_of(engine, SEQUENTIAL_BOOK) == 0

    @pytest.mark.deep
    @pytest.mark.time_limit(60)
    async def test_twenty_buyers_race_for_five_copies(self, service: Service, engine: Engine) -> None:
        """20 customers at once for 5 copies: exactly 5 orders (201), 15 refusals (409), stock 0."""
        set_stock(engine, RACE_BOOK, 5)
        before = sold(engine, RACE_BOOK)
        buyers = [await service.login(name) for name in ex.CUSTOMERS[:20]]
        statuses = await race(service, buyers, [{RACE_BOOK: 1}] * 20)
        assert sorted(statuses) == [201] * 5 + [409] * 15, f"statuses: {sorted(statuses)}"
        assert stock_of(engine, RACE_BOOK) == 0
        assert sold(engine, RACE_BOOK) - before == 5, "orders and stock disagree: copies were oversold"

    @pytest.mark.deep
    @pytest.mark.time_limit(60)
    async def test_crossed_multi_book_orders_neither_deadlock_nor_oversell(
        self, service: Service, engine: Engine
    ) -> None:
        """20 buyers of two books, half listing them in the other order: 5 orders, no 500, stock 0 and 0."""
        set_stock(engine, LEFT_BOOK, 5)
        set_stock(engine, RIGHT_BOOK, 5)
        buyers = [await service.login(name) for name in ex.CUSTOMERS[:20]]
        lines = [{LEFT_BOOK: 1, RIGHT_BOOK: 1} if n % 2 else {RIGHT_BOOK: 1, LEFT_BOOK: 1} for n in range(20)]
        statuses = await race(service, buyers, lines)
        assert sorted(statuses) == [201] * 5 + [409] * 15, f"statuses: {sorted(statuses)}"
        assert (stock_of(engine, LEFT_BOOK), stock_of(engine, RIGHT_BOOK)) == (0, 0)

    @pytest.mark.deep
    @pytest.mark.time_limit(60)
    async def test_failed_payments_under_load_return_every_copy_once(
        self, service: Service, engine: Engine
    ) -> None:
        """Payment service down during a rush: every order a 503 problem, the stock back to exactly 5."""
        set_stock(engine, OUTAGE_BOOK, 5)
        service.payments.down = True
        buyers = [await service.login(name) for name in ex.CUSTOMERS[:10]]
        statuses = await race(service, buyers, [{OUTAGE_BOOK: 1}] * 10)
        assert set(statuses) <= {503, 409}, f"statuses: {sorted(statuses)}"
        assert statuses.count(503) >= 5, f"statuses: {sorted(statuses)}"
        assert stock_of(engine, OUTAGE_BOOK) == 5, "copies were lost or returned twice"
        assert sold(engine, OUTAGE_BOOK) == 0

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_two_worker_processes_never_oversell(self, settings: Any, engine: Engine) -> None:
        """Two server processes on one database, 20 buyers across them for 5 copies: exactly 5 orders."""
        from coursekit.servers import start_app

        set_stock(engine, PROCESS_BOOK, 5)
        kwargs = {"database": settings.database, "secret": settings.jwt_secret, "argon2_memory_kib": 1024}
        with start_app(SERVED, **kwargs) as first, start_app(SERVED, **kwargs) as second:
            urls = [first.url, second.url]
            tokens = []
            for number, name in enumerate(ex.CUSTOMERS[:20]):
                form = {"username": name, "password": ex.SEED_PASSWORD}
                answer = httpx.post(urls[number % 2] + "/token", data=form, timeout=30)
                assert answer.status_code == 200, answer.text[:200]
                tokens.append(answer.json()["access_token"])
            statuses: list[int] = []
            start = threading.Barrier(20)

            def buy(number: int) -> None:
                body = {"lines": [{"book_id": PROCESS_BOOK, "quantity": 1}]}
                start.wait()
                answer = httpx.post(
                    urls[number % 2] + "/orders", json=body, headers=bearer(tokens[number]), timeout=60
                )
                statuses.append(answer.status_code)

            threads = [threading.Thread(target=buy, args=(n,)) for n in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert sorted(statuses) == [201] * 5 + [409] * 15, f"statuses: {sorted(statuses)}"
        assert stock_of(engine, PROCESS_BOOK) == 0


# ------------------------------------------------------------------ Task 4: observability
class TestTask4Observability:
    """Task 4: Observability."""

    async def test_every_answer_carries_a_request_id(self, service: Service) -> None:
        """X-Request-ID on every answer: a plain client id is echoed, a missing or unsafe one replaced."""
        mine = await service.http.get("/books", headers={"X-Request-ID": "shop-42.a_b"})
        assert mine.headers.get("x-request-id") == "shop-42.a_b"
        fresh = [await service.http.get("/books") for _ in range(2)]
        ids = [answer.headers.get("x-request-id", "") for answer in fresh]
        assert all(ids), "an answer without X-Request-ID"
        assert ids[0] != ids[1], "each request needs an id of its own"
        unsafe = await service.http.get("/books", headers={"X-Request-ID": "x" * 300})
        assert unsafe.headers.get("x-request-id", "x" * 300) != "x" * 300
        failed = await service.http.get("/orders/1")
        assert failed.status_code == 401
        assert failed.headers.get("x-request-id")

    async def test_each_request_writes_one_json_access_line(self, service: Service) -> None:
        """One JSON 'request' line per request: request_id, method, route template, status, duration_ms."""
        staff = await service.login(ex.STAFF)
        await service.http.get("/orders/424242", headers={**staff, "X-Request-ID": "line-check-1"})
        lines = [line for line in service.log_lines() if line.get("request_id") == "line-check-1"]
        access = [line for line in lines if line.get("event") == "request"]
        assert len(access) == 1, f"expected one request line, got {access}"
        line = access[0]
        assert (line.get("method"), line.get("route"), line.get("status")) == (
            "GET",
            "/orders/{order_id}",
            404,
        )
        assert isinstance(line.get("duration_ms"), (int, float))
        assert line["duration_ms"] >= 0

    async def test_an_orders_log_lines_share_its_request_id(self, service: Service) -> None:
        """A retried payment: the retry, the placed order and the access line all carry the request id."""
        headers = await service.login("reader18")
        service.payments.fail_next(1, 503)
        answer = await service.http.post(
            "/orders", json={"lines": [{"book_id": 16, "quantity": 1}]},
            headers={**headers, "X-Request-ID": "order-trace-7"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text[:300]
        events = [
            line.get("event") for line in service.log_lines() if line.get("request_id") == "order-trace-7"
        ]
        for expected in ("payment_retry", "order_placed", "request"):
            assert expected in events, f"no {expected!r} line with the request id; got {events}"

    async def test_metrics_count_requests_by_route_template(self, service: Service) -> None:
        """/metrics counts http_requests_total by method, route template and status, matching what was sent."""
        staff = await service.login(ex.STAFF)
        for order_id in (900001, 900002, 900003):
            await service.http.get(f"/orders/{order_id}", headers=staff)
        page = (await service.http.get("/metrics")).text
        assert (
            metric(page, "http_requests_total", method="GET", route="/orders/{order_id}", status="404") == 3
        )
        assert metric(page, "http_requests_total", method="POST", route="/token", status="200") == 1
        assert "900001" not in page, "a raw path became a label: one time series per order id"
        assert (
            metric(page, "http_request_duration_seconds_count", method="GET", route="/orders/{order_id}") == 3
        )

    async def test_business_metrics_count_orders_and_payment_outcomes(self, service: Service) -> None:
        """orders_placed_total counts paid orders; payment_requests_total counts ok and error calls."""
        headers = await service.login("reader19")
        service.payments.fail_next(1, 503)
        assert (await service.order(headers, {17: 1})).status_code == 201
        assert (await service.order(headers, {18: 1})).status_code == 201
        page = (await service.http.get("/metrics")).text
        assert metric(page, "orders_placed_total") == 2
        assert metric(page, "payment_requests_total", outcome="ok") == 2
        assert metric(page, "payment_requests_total", outcome="error") == 1

    async def test_readiness_follows_the_database_and_liveness_does_not(self, service: Service) -> None:
        """/health/live is 200 throughout; /health/ready is 200, a 503 problem with the database down, 200 again."""
        assert (await service.http.get("/health/live")).status_code == 200
        assert (await service.http.get("/health/ready")).status_code == 200
        await service.engine.dispose()
        with database_down(service.engine):
            down = await service.http.get("/health/ready")
            assert_problem(down, 503)
            assert "refused" not in down.text.lower()
            assert "operationalerror" not in down.text.lower()
            assert (await service.http.get("/health/live")).status_code == 200
        assert (await service.http.get("/health/ready")).status_code == 200

    async def test_an_unexpected_error_is_a_500_problem_logged_with_its_id(self, service: Service) -> None:
        """A database failure mid-request: a 500 problem without internals, an error line with the request id."""
        staff = await service.login(ex.STAFF)
        await service.engine.dispose()
        with database_down(service.engine):
            answer = await service.http.get("/orders", headers={**staff, "X-Request-ID": "boom-1"})
        body = assert_problem(answer, 500)
        assert "database is down" not in json.dumps(body)
        assert "Traceback" not in answer.text
        levels = [line.get("level") for line in service.log_lines() if line.get("request_id") == "boom-1"]
        assert "error" in levels, f"no error line with the request id; levels {levels}"
        assert answer.headers.get("x-request-id") == "boom-1"


# -------------------------------------------------------------------- Task 5: performance
class TestTask5Performance:
    """Task 5: Performance."""

    async def test_an_order_page_costs_the_same_few_queries_at_any_size(
        self, service: Service, engine: Engine
    ) -> None:
        """GET /orders sends at most 3 statements, for a page of 5 orders as for a page of 25."""
        add_orders(engine, user_id(engine, "reader20"), 30)
        headers = await service.login("reader20")
        counts = {}
        for limit in (5, 25):
            with count_queries(service.engine) as sent:
                answer = await service.http.get("/orders", params={"limit": limit}, headers=headers)
            assert answer.status_code == 200
            assert len(answer.json()["items"]) == limit
            assert all(len(item["lines"]) == 2 for item in answer.json()["items"])
            counts[limit] = sent.count
        assert counts[5] == counts[25] <= 3, (
            f"statements per page: {counts} (budget: 3, the same for any size)"
        )

    async def test_reads_stay_within_their_query_budgets(self, service: Service) -> None:
        """GET /orders/{id} at most 3 statements; a GET /books page at most 2."""
        customer = await service.login("reader21")
        order = (await service.order(customer, {19: 1})).json()
        with count_queries(service.engine) as sent:
            assert (await service.http.get(f"/orders/{order['id']}", headers=customer)).status_code == 200
        assert sent.count <= 3, f"GET /orders/{{id}} sent {sent.count} statements (budget 3)"
        with count_queries(service.engine) as sent:
            assert (await service.http.get("/books", params={"limit": 50})).status_code == 200
        assert sent.count <= 2, f"GET /books sent {sent.count} statements (budget 2)"

    async def test_placing_an_order_costs_a_bounded_number_of_queries(self, service: Service) -> None:
        """POST /orders: at most 8 statements for one line, and at most one more per extra line."""
        customer = await service.login("reader22")
        counts = {}
        for lines in ({22: 1}, {23: 1, 24: 1, 25: 1, 26: 1, 27: 1}):
            with count_queries(service.engine) as sent:
                assert (await service.order(customer, lines)).status_code == 201
            counts[len(lines)] = sent.count
        assert counts[1] <= 8, f"one line: {counts[1]} statements (budget 8)"
        assert counts[5] - counts[1] <= 4, f"statements by lines: {counts} (at most one more per extra line)"

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_a_short_load_run_meets_the_budget(self, settings: Any) -> None:
        """A short locust run (8 users, 4 s) against the served app: no failures, p95 under 1 s."""
        from coursekit.loadtest import run_locust
        from coursekit.servers import start_app

        kwargs = {"database": settings.database, "secret": settings.jwt_secret, "argon2_memory_kib": 1024}
        with start_app(SERVED, **kwargs) as server:
            result = run_locust(
                {"capstone": server.url}, users=8, seconds=4, locustfile=LOCUSTFILE,
                env={"LAB_PASSWORD": ex.SEED_PASSWORD},
            )  # fmt: skip
        summary = result.summary["capstone"]
        assert summary["failures"] == 0, f"failed requests under load:\n{result.table()}"
        assert summary["requests"] >= 40, f"too few requests answered:\n{result.table()}"
        assert summary["p95"] <= P95_BUDGET_MS, (
            f"p95 {summary['p95']:.0f} ms over {P95_BUDGET_MS} ms:\n{result.table()}"
        )
