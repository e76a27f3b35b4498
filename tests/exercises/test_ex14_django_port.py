"""Tests for ex14: the bookstore's catalog and order endpoints, ported to Django.

The learner's views are served by Django's WSGI handler in-process (httpx's
WSGITransport) on the course database (SQLite, or PostgreSQL with
COURSE_DATABASE_URL). The checks are the contract's, in
``coursekit/frameworks/contract.py``: the same checks run against the FastAPI and
Flask references in ``test_ex14_references.py``. The data: 60 books whose
author ids run the other way, every fourth book without reviews, one book sold
out, one without a stock row, and one with 5 copies for the races.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from coursekit import db
from coursekit.frameworks import contract
from coursekit.frameworks.clients import wsgi_client
from coursekit.frameworks.django_setup import configure_django, wsgi_app
from coursekit.impl import load

DATABASE = "ex14"
configure_django(DATABASE)  # before the views are imported: their models need Django set up
ex = load("ex14_django_port")

from django.db import connection  # noqa: E402  (needs Django configured)
from django.test.utils import CaptureQueriesContext  # noqa: E402

pytestmark = pytest.mark.db

QUERY_BUDGET = 3  # statements for a page of the catalog, whatever its size
LATENCY_S = 0.005  # added to each statement in the races, so buyers overlap


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    sqlalchemy_engine = db.fresh_engine(DATABASE)
    try:
        contract.seed(sqlalchemy_engine)
        yield sqlalchemy_engine
    finally:
        connection.close()
        sqlalchemy_engine.dispose()


def new_client() -> httpx.Client:
    return wsgi_client(wsgi_app(ex))


@pytest.fixture
def client(engine: Engine) -> Iterator[httpx.Client]:
    with new_client() as http:
        yield http


@pytest.fixture
def stock(engine: Engine) -> Engine:
    """Orders start from known stock: no orders, the race book at 5 copies."""
    contract.reset_stock(engine)
    return engine


def with_latency(buy: Callable[[], None], seconds: float = LATENCY_S) -> None:
    """Each statement of this thread's Django connection waits a little first."""

    def pause(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        time.sleep(seconds)
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(pause):
            buy()
    finally:
        connection.close()  # this thread's own connection


def with_short_latency(buy: Callable[[], None]) -> None:
    with_latency(buy, seconds=LATENCY_S / 2.5)  # the fast stage's race: smaller, quicker


def catalog_statements(client: httpx.Client, size: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        contract.get_page(client, size=size)
    return len(queries.captured_queries)


class TestCatalog:
    """Task 1: The catalog: a page of books with author and review count."""

    def test_first_page(self, client: httpx.Client) -> None:
        """GET /books gives page 1 of 20 books in id order, each with its own author, price as a string and review count (0 for books without reviews)."""
        contract.check_first_page(client)

    def test_later_page(self, client: httpx.Client) -> None:
        """GET /books?page=3&size=7 gives books 15 to 21, in id order."""
        contract.check_later_page(client)

    def test_last_page_and_past_the_end(self, client: httpx.Client) -> None:
        """The last page holds what is left (10 books); the page after it is an empty list, not an error."""
        contract.check_last_and_past_the_end(client)

    @pytest.mark.parametrize(
        "params", contract.BAD_PAGES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items())
    )
    def test_bad_page_parameters_are_422_problems(self, client: httpx.Client, params: dict[str, Any]) -> None:
        """A size outside 1..100, a page below 1 or a non-number is a 422 problem (application/problem+json with status, title, detail)."""
        contract.check_bad_page(client, params)


class TestQueryBudget:
    """Task 2: A query budget independent of the page size."""

    def test_catalog_statements_do_not_grow_with_the_page_size(self, client: httpx.Client) -> None:
        """A page of 1, 10 or 50 books takes the same number of SQL statements, at most 3."""
        counts = {size: catalog_statements(client, size) for size in (1, 10, 50)}
        assert len(set(counts.values())) == 1, f"statements per page size: {counts}"
        assert counts[50] <= QUERY_BUDGET, f"statements per page size: {counts} (budget {QUERY_BUDGET})"


class TestPlaceOrder:
    """Task 3: Placing an order, with problem details for every refusal."""

    def test_places_an_order(self, client: httpx.Client, stock: Engine) -> None:
        """POST /orders answers 201 with the order (unit_price as a string, status paid), stores it with its line and takes the copies."""
        contract.check_places_order(client, stock)

    def test_the_last_copies_can_be_sold(self, client: httpx.Client, stock: Engine) -> None:
        """Ordering exactly the copies in stock succeeds and leaves 0."""
        contract.check_last_copies_sell(client, stock)

    @pytest.mark.parametrize(
        "body", contract.OUT_OF_STOCK_BODIES, ids=["too-many", "sold-out", "no-stock-row"]
    )
    def test_short_stock_is_a_409_problem(
        self, client: httpx.Client, stock: Engine, body: dict[str, Any]
    ) -> None:
        """More copies than in stock (or a book without stock) is a 409 problem, and nothing changes."""
        contract.check_refused(client, stock, body, 409)

    @pytest.mark.parametrize("body", contract.UNKNOWN_BODIES, ids=["unknown-book", "unknown-customer"])
    def test_unknown_book_or_customer_is_a_404_problem(
        self, client: httpx.Client, stock: Engine, body: dict[str, Any]
    ) -> None:
        """An unknown book or customer is a 404 problem, and nothing changes."""
        contract.check_refused(client, stock, body, 404)

    @pytest.mark.parametrize(
        "body",
        contract.INVALID_BODIES,
        ids=[
            "quantity-0",
            "quantity-negative",
            "no-quantity",
            "book-not-a-number",
            "no-customer",
            "a-list",
            "a-string",
        ],
    )
    def test_invalid_body_is_a_422_problem(self, client: httpx.Client, stock: Engine, body: Any) -> None:
        """A quantity below 1, a missing or non-integer field, or a body that is not an object is a 422 problem, and nothing changes."""
        contract.check_refused(client, stock, body, 422)

    def test_a_body_that_is_not_json_is_a_422_problem(self, client: httpx.Client, stock: Engine) -> None:
        """A body that is not JSON is a 422 problem, never a 500."""
        contract.check_not_json(client, stock)


class TestNeverOversells:
    """Task 4: Concurrent buyers never get more copies than there are."""

    @pytest.mark.time_limit(20)  # a race waits on locks: give a busy machine room
    def test_eight_buyers_two_copies(self, stock: Engine) -> None:
        """8 buyers (threads, each with its own connection) race for 2 copies: exactly 2 get 201, 6 get 409, stock ends at 0."""
        contract.reset_stock(stock, race_copies=2)
        outcome = contract.race(new_client, buyers=8, around_each=with_short_latency)
        contract.check_race(outcome, stock, buyers=8, copies=2)

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_twenty_buyers_five_copies(self, stock: Engine) -> None:
        """20 buyers race for 5 copies: exactly 5 get 201, 15 get 409, stock ends at 0, 5 copies ordered."""
        outcome = contract.race(new_client, buyers=20, around_each=with_latency)
        contract.check_race(outcome, stock, buyers=20, copies=5)

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_buyers_of_two_copies_each(self, stock: Engine) -> None:
        """10 buyers want 2 copies each of 5: exactly 2 orders, 1 copy left, never negative."""
        outcome = contract.race(new_client, buyers=10, quantity=2, around_each=with_latency)
        assert not outcome.errors, outcome.errors[0]
        assert outcome.count(201) == 2, sorted(outcome.statuses)
        assert outcome.count(409) == 8, sorted(outcome.statuses)
        assert contract.stock_of(stock, contract.RACE_BOOK) == 1
        assert contract.copies_ordered(stock, contract.RACE_BOOK) == 4
