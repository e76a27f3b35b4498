"""Tests for ex12: a GraphQL API within a query budget, a depth limit, and the current user's orders only.

The tests build a small bookstore of their own, shaped to catch the classic
mistakes: books whose authors' ids run the other way (a batch function that
answers in the database's order gives books the wrong authors), every third
book without reviews (one that skips keys shifts everybody's reviews), two
customers with orders (Alice and Bob), and books kept for the mutation tests
with known stock. Each test talks to a new app through httpx's ASGITransport,
as a signed-in customer (``X-Customer-Id``) or anonymously.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from coursekit import db
from coursekit.bookstore import Base, Order, OrderLine, Stock
from coursekit.impl import load
from coursekit.querycount import count_queries

ex = load("ex12_graphql")

pytestmark = pytest.mark.db

DATABASE = "ex12"
BUDGET = 5  # statements for a catalogue page with authors, reviews, reviewers and stock
N_BOOKS = 60
ALICE, BOB, CAROL, BUYERS = 1, 2, 3, 4
RACE_BOOK, RACE_STOCK = 51, 5
STALE_BOOK, STALE_STOCK = 52, 3
PLENTY_BOOK, OTHER_PLENTY_BOOK = 53, 56
LOW_ID_BOOK = 49  # in stock, and sorts before SOLD_OUT_BOOK
SOLD_OUT_BOOK = 54
MISSING_BOOK = 9_999


def author_of(book_id: int) -> int:
    return N_BOOKS + 1 - book_id  # ids run the other way


def reviewers_of(book_id: int) -> list[int]:
    if book_id % 3 == 0:
        return []
    return [BOB, ALICE] if book_id % 2 else [CAROL]


def seed(engine: Engine) -> dict[int, list[int]]:
    """Create and fill the tables; return each customer's order ids."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    day = dt.datetime(2025, 3, 1, 12, 0)
    with engine.begin() as connection:
        connection.execute(
            insert(Base.metadata.tables["authors"]),
            [{"id": i, "name": f"Author {i}", "country": "GB", "born": 1950} for i in range(1, N_BOOKS + 1)],
        )
        connection.execute(
            insert(Base.metadata.tables["books"]),
            [
                {
                    "id": i,
                    "isbn": f"978000000{i:04d}",
                    "title": f"Book {i}",
                    "author_id": author_of(i),
                    "genre": "fiction",
                    "language": "en",
                    "published_year": 2000,
                    "pages": 100,
                    "price": Decimal("10.00") + i % 7,
                }
                for i in range(1, N_BOOKS + 1)
            ],
        )
        connection.execute(
            insert(Base.metadata.tables["customers"]),
            [
                {
                    "id": c,
                    "email": f"c{c}@example.com",
                    "name": name,
                    "country": "GB",
                    "joined_on": day.date(),
                }
                for c, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol"), (BUYERS, "Buyers"))
            ],
        )
        special = {RACE_BOOK: RACE_STOCK, STALE_BOOK: STALE_STOCK, SOLD_OUT_BOOK: 0}
        connection.execute(
            insert(Stock),
            [{"book_id": i, "quantity": special.get(i, 1_000)} for i in range(1, N_BOOKS + 1)],
        )
        connection.execute(
            insert(Base.metadata.tables["reviews"]),
            [
                {
                    "book_id": b,
                    "customer_id": c,
                    "rating": 1 + (b + c) % 5,
                    "title": f"R{b}-{c}",
                    "created_at": day,
                }
                for b in range(1, N_BOOKS + 1)
                for c in reviewers_of(b)
            ],
        )
    orders: dict[int, list[int]] = {ALICE: [], BOB: []}
    with Session(engine) as session, session.begin():
        for customer, count in ((BOB, 2), (ALICE, 3)):
            for n in range(count):
                order = Order(customer_id=customer, placed_at=day, status="paid")
                order.lines = [
                    OrderLine(book_id=1 + n + customer, quantity=1, unit_price=Decimal("10.00")),
                    OrderLine(book_id=20 + n, quantity=2, unit_price=Decimal("11.00")),
                ]
                session.add(order)
                session.flush()
                orders[customer].append(order.id)
    return orders


@pytest.fixture(scope="module")
def order_ids() -> Iterator[dict[int, list[int]]]:
    engine = db.fresh_engine(DATABASE)
    try:
        yield seed(engine)
    finally:
        engine.dispose()


@pytest.fixture
async def engine(order_ids: dict[int, list[int]]) -> AsyncIterator[AsyncEngine]:
    async_engine = db.make_async_engine(DATABASE)
    try:
        yield async_engine
    finally:
        await async_engine.dispose()


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = ex.create_app(engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def gql(
    client: httpx.AsyncClient, query: str, as_customer: int | None = None, **variables: Any
) -> dict[str, Any]:
    headers = {} if as_customer is None else {"X-Customer-Id": str(as_customer)}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code in (200, 400), (
        f"POST /graphql answered {response.status_code}: {response.text}"
    )
    body: dict[str, Any] = response.json()
    return body


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), f"unexpected errors: {body.get('errors')}"
    data: dict[str, Any] = body["data"]
    return data


def assert_refused(body: dict[str, Any], word: str) -> None:
    assert body.get("data") is None, f"answered instead of refused: {body}"
    assert word in error_messages(body).lower(), f"the error should mention {word!r}: {body}"


def error_messages(body: dict[str, Any]) -> str:
    return " | ".join(error.get("message", "") for error in body.get("errors") or [])


CATALOGUE = """
query ($first: Int!) {
  books(first: $first) {
    id title stock
    author { id name }
    reviews { id rating reviewer { name } }
  }
}
"""

MY_ORDERS = "{ orders { id status lines { quantity book { id title author { name } } } } }"

PLACE = """
mutation ($lines: [OrderLineInput!]!) {
  placeOrder(input: {lines: $lines}) {
    order { id lines { quantity unitPrice book { id } } }
    errors { field code message }
  }
}
"""


def line(book_id: int, quantity: int) -> dict[str, int]:
    return {"bookId": book_id, "quantity": quantity}


async def stock_of(engine: AsyncEngine, book_id: int) -> int:
    async with engine.connect() as connection:
        value = await connection.scalar(select(Stock.quantity).where(Stock.book_id == book_id))
    return int(value or 0)


async def order_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM orders")) or 0)


def nested(depth: int) -> str:
    """A query of exactly ``depth`` (leaf fields count 0): books > author > books > author ..."""
    inner = "id"
    for level in range(depth, 0, -1):
        inner = f"{'books' if level % 2 else 'author'} {{ id {inner} }}"
    return "{ " + inner.replace("books {", "books(first: 2) {", 1) + " }"


class TestCatalogue:
    """Task 1: Books with their authors, reviews and stock."""

    @pytest.mark.anyio
    async def test_each_book_comes_with_its_own_author(self, client: httpx.AsyncClient) -> None:
        """books(first: 30) gives books 1-30 in id order, each with its own author (author ids run the other way)."""
        books = data_of(await gql(client, CATALOGUE, first=30))["books"]
        assert [b["id"] for b in books] == list(range(1, 31))
        assert [b["author"]["id"] for b in books] == [author_of(b["id"]) for b in books]
        assert [b["author"]["name"] for b in books] == [f"Author {author_of(b['id'])}" for b in books]

    @pytest.mark.anyio
    async def test_each_book_comes_with_its_own_reviews(self, client: httpx.AsyncClient) -> None:
        """Each book lists its own reviews, in id order; a book without reviews has an empty list."""
        books = data_of(await gql(client, CATALOGUE, first=30))["books"]
        names = {ALICE: "Alice", BOB: "Bob", CAROL: "Carol"}
        got = {b["id"]: [r["reviewer"]["name"] for r in b["reviews"]] for b in books}
        want = {b: [names[c] for c in reviewers_of(b)] for b in range(1, 31)}
        assert got == want

    @pytest.mark.anyio
    async def test_stock_and_single_book(self, client: httpx.AsyncClient) -> None:
        """book(id:) gives that book with its stock; an unknown id gives null, not an error."""
        body = await gql(client, "query ($id: Int!) { book(id: $id) { id title stock } }", id=SOLD_OUT_BOOK)
        assert data_of(body)["book"] == {"id": SOLD_OUT_BOOK, "title": f"Book {SOLD_OUT_BOOK}", "stock": 0}
        body = await gql(client, "query ($id: Int!) { book(id: $id) { id } }", id=MISSING_BOOK)
        assert data_of(body) == {"book": None}

    @pytest.mark.anyio
    async def test_page_size_is_bounded(self, client: httpx.AsyncClient) -> None:
        """books(first:) accepts 1 to 100; 0 or 101 gives an error saying so, never a 500."""
        for first in (0, 101):
            body = await gql(client, "query ($f: Int!) { books(first: $f) { id } }", f=first)
            assert body.get("data") is None, f"first={first} was answered: {body}"
            assert "100" in error_messages(body), f"first={first}: the error should name the bound: {body}"
        assert len(data_of(await gql(client, "{ books(first: 100) { id } }"))["books"]) == N_BOOKS
        assert len(data_of(await gql(client, "{ books(first: 1) { id } }"))["books"]) == 1


class TestQueryBudget:
    """Task 2: A query budget independent of the number of items."""

    @pytest.mark.anyio
    async def test_catalogue_statements_do_not_grow_with_books(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        """A catalogue page (authors, reviews, reviewers, stock) takes the same number of statements, at most 5, for 1, 10 and 50 books."""
        counts = {}
        for first in (1, 10, 50):
            with count_queries(engine) as counter:
                data_of(await gql(client, CATALOGUE, first=first))
            counts[first] = counter.count
        assert len(set(counts.values())) == 1, f"statements per page size: {counts}"
        assert counts[50] <= BUDGET, f"statements per page size: {counts} (budget {BUDGET})"

    @pytest.mark.anyio
    async def test_order_statements_do_not_grow_with_orders(
        self, client: httpx.AsyncClient, engine: AsyncEngine, order_ids: dict[int, list[int]]
    ) -> None:
        """orders { lines { book { author } } } takes the same number of statements (at most 4) for 2 and 3 orders."""
        counts = {}
        for customer in (BOB, ALICE):
            with count_queries(engine) as counter:
                orders = data_of(await gql(client, MY_ORDERS, as_customer=customer))["orders"]
            assert len(orders) == len(order_ids[customer])
            counts[customer] = counter.count
        assert counts[BOB] == counts[ALICE] <= 4, f"statements for Bob (2 orders), Alice (3): {counts}"


class TestAbuseLimits:
    """Task 3: Depth and alias limits."""

    @pytest.mark.anyio
    async def test_depth_at_the_limit_is_answered(self, client: httpx.AsyncClient) -> None:
        """A query exactly MAX_DEPTH deep is answered."""
        data_of(await gql(client, nested(ex.MAX_DEPTH)))

    @pytest.mark.anyio
    async def test_one_level_deeper_is_refused(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """A query MAX_DEPTH + 1 deep is refused before it runs: an error naming the depth, no data, no SQL."""
        with count_queries(engine) as counter:
            body = await gql(client, nested(ex.MAX_DEPTH + 1))
        assert_refused(body, "depth")
        assert counter.count == 0, f"the refused query still ran {counter.count} statements"

    @pytest.mark.anyio
    async def test_fragments_count_towards_depth(self, client: httpx.AsyncClient) -> None:
        """A query split into fragments is measured like the same query inline: MAX_DEPTH + 1 refused, MAX_DEPTH answered."""
        query = """
        query { books(first: 2) { ...B } }
        fragment B on Book { author { ...A } }
        fragment A on Author { books { author { books { author { books { id } } } } } }
        """
        body = await gql(client, query)
        assert_refused(body, "depth")
        allowed = """
        query { books(first: 2) { ...B } }
        fragment B on Book { author { ...A } }
        fragment A on Author { books { author { books { author { id } } } } }
        """
        data_of(await gql(client, allowed))

    @pytest.mark.anyio
    async def test_aliases_are_limited(self, client: httpx.AsyncClient) -> None:
        """Up to MAX_ALIASES aliases are answered; one more is refused."""

        def with_aliases(count: int) -> str:
            return "{ " + " ".join(f"a{i}: books(first: 1) {{ id }}" for i in range(count)) + " }"

        assert len(data_of(await gql(client, with_aliases(ex.MAX_ALIASES)))) == ex.MAX_ALIASES
        body = await gql(client, with_aliases(ex.MAX_ALIASES + 1))
        assert_refused(body, "alias")


class TestOwnOrdersOnly:
    """Task 4: Orders of the current customer only."""

    @pytest.mark.anyio
    async def test_orders_lists_exactly_mine(
        self, client: httpx.AsyncClient, order_ids: dict[int, list[int]]
    ) -> None:
        """orders gives the signed-in customer's orders (id order) and nobody else's, for two customers in turn."""
        for customer in (ALICE, BOB, ALICE):
            orders = data_of(await gql(client, MY_ORDERS, as_customer=customer))["orders"]
            assert [o["id"] for o in orders] == order_ids[customer], f"as customer {customer}"

    @pytest.mark.anyio
    async def test_order_by_id_of_someone_else_is_null(
        self, client: httpx.AsyncClient, order_ids: dict[int, list[int]]
    ) -> None:
        """order(id:) of another customer's order gives null, exactly like an id that does not exist."""
        query = "query ($id: Int!) { order(id: $id) { id lines { quantity } } }"
        mine = await gql(client, query, as_customer=ALICE, id=order_ids[ALICE][0])
        assert data_of(mine)["order"]["id"] == order_ids[ALICE][0]
        theirs = await gql(client, query, as_customer=ALICE, id=order_ids[BOB][0])
        missing = await gql(client, query, as_customer=ALICE, id=MISSING_BOOK)
        assert theirs == missing == {"data": {"order": None}}

    @pytest.mark.anyio
    async def test_no_path_through_the_graph_reaches_others_orders(
        self, client: httpx.AsyncClient, order_ids: dict[int, list[int]]
    ) -> None:
        """Orders reached through reviews > reviewer > orders are only ever the signed-in customer's."""
        query = "{ books(first: 6) { reviews { reviewer { id orders { id } } } } }"
        for customer in (ALICE, BOB, CAROL):
            books = data_of(await gql(client, query, as_customer=customer))["books"]
            for book in books:
                for review in book["reviews"]:
                    reviewer = review["reviewer"]
                    expected = order_ids.get(reviewer["id"], []) if reviewer["id"] == customer else []
                    assert [o["id"] for o in reviewer["orders"]] == expected, f"as {customer}: {reviewer}"

    @pytest.mark.anyio
    async def test_anonymous_gets_no_orders(self, client: httpx.AsyncClient) -> None:
        """Without a signed-in customer, orders is an authentication error and no order is returned."""
        for header in (None, "abc"):
            headers = {} if header is None else {"X-Customer-Id": header}
            response = await client.post("/graphql", json={"query": "{ orders { id } }"}, headers=headers)
            body = response.json()
            assert_refused(body, "authenticat")

    @pytest.mark.anyio
    async def test_concurrent_customers_never_see_each_others_orders(
        self, client: httpx.AsyncClient, order_ids: dict[int, list[int]]
    ) -> None:
        """Alice's and Bob's requests served at the same time each get their own orders."""
        results: dict[tuple[int, int], list[int]] = {}

        async def fetch(customer: int, n: int) -> None:
            orders = data_of(await gql(client, MY_ORDERS, as_customer=customer))["orders"]
            results[customer, n] = [o["id"] for o in orders]

        async with anyio.create_task_group() as group:
            for n in range(3):
                for customer in (ALICE, BOB):
                    group.start_soon(fetch, customer, n)
        for (customer, _), ids in results.items():
            assert ids == order_ids[customer], f"customer {customer} got {ids}"


class TestPlaceOrder:
    """Task 5: placeOrder validates its input and never oversells."""

    @pytest.mark.anyio
    async def test_a_placed_order_shows_at_once(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """placeOrder gives the new order with its lines at today's price; the next request sees it and the lower stock."""
        before = await stock_of(engine, STALE_BOOK)
        query = "query ($id: Int!) { book(id: $id) { stock } }"
        assert data_of(await gql(client, query, id=STALE_BOOK))["book"]["stock"] == before
        placed = data_of(await gql(client, PLACE, as_customer=CAROL, lines=[line(STALE_BOOK, 1)]))[
            "placeOrder"
        ]
        assert placed["errors"] == [], placed
        assert placed["order"] is not None, placed
        price = str(Decimal("10.00") + STALE_BOOK % 7)
        assert placed["order"]["lines"] == [{"quantity": 1, "unitPrice": price, "book": {"id": STALE_BOOK}}]
        assert data_of(await gql(client, query, id=STALE_BOOK))["book"]["stock"] == before - 1
        mine = data_of(await gql(client, "{ orders { id } }", as_customer=CAROL))["orders"]
        assert placed["order"]["id"] in [o["id"] for o in mine]

    @pytest.mark.anyio
    async def test_quantity_bounds(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """Quantities 1 and MAX_QUANTITY are accepted; 0 and MAX_QUANTITY + 1 are user errors (code QUANTITY_OUT_OF_RANGE)."""
        for quantity in (0, ex.MAX_QUANTITY + 1, -1):
            before = await stock_of(engine, PLENTY_BOOK)
            result = data_of(await gql(client, PLACE, as_customer=CAROL, lines=[line(PLENTY_BOOK, quantity)]))
            payload = result["placeOrder"]
            assert payload["order"] is None, f"quantity {quantity} was accepted"
            assert [e["code"] for e in payload["errors"]] == ["QUANTITY_OUT_OF_RANGE"], payload
            assert payload["errors"][0]["field"] == "lines.0.quantity", payload
            assert await stock_of(engine, PLENTY_BOOK) == before
        for quantity in (1, ex.MAX_QUANTITY):
            before = await stock_of(engine, PLENTY_BOOK)
            result = data_of(await gql(client, PLACE, as_customer=CAROL, lines=[line(PLENTY_BOOK, quantity)]))
            assert result["placeOrder"]["errors"] == [], f"quantity {quantity}: {result}"
            assert await stock_of(engine, PLENTY_BOOK) == before - quantity

    @pytest.mark.anyio
    async def test_line_count_and_duplicates(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """No lines or more than MAX_LINES is LINES_OUT_OF_RANGE; the same book twice is DUPLICATE_BOOK; nothing is written."""
        orders = await order_count(engine)
        too_many = [line(i, 1) for i in range(1, ex.MAX_LINES + 2)]
        twice = [line(PLENTY_BOOK, 1), line(OTHER_PLENTY_BOOK, 1), line(PLENTY_BOOK, 2)]
        for lines, expected in (
            ([], [("LINES_OUT_OF_RANGE", "lines")]),
            (too_many, [("LINES_OUT_OF_RANGE", "lines")]),
            (twice, [("DUPLICATE_BOOK", "lines.2.bookId")]),
        ):
            payload = data_of(await gql(client, PLACE, as_customer=CAROL, lines=lines))["placeOrder"]
            assert payload["order"] is None, f"{len(lines)} lines accepted"
            assert [(e["code"], e["field"]) for e in payload["errors"]] == expected
        assert await order_count(engine) == orders
        full = [line(i, 1) for i in range(1, ex.MAX_LINES + 1)]
        payload = data_of(await gql(client, PLACE, as_customer=CAROL, lines=full))["placeOrder"]
        assert payload["errors"] == [], f"{ex.MAX_LINES} lines refused: {payload}"

    @pytest.mark.anyio
    async def test_unknown_book_changes_nothing(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """An unknown book is a user error (UNKNOWN_BOOK, field lines.1.bookId); no order is written, no stock taken."""
        before, orders = await stock_of(engine, OTHER_PLENTY_BOOK), await order_count(engine)
        lines = [line(OTHER_PLENTY_BOOK, 1), line(MISSING_BOOK, 1)]
        payload = data_of(await gql(client, PLACE, as_customer=CAROL, lines=lines))["placeOrder"]
        assert payload["order"] is None
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("UNKNOWN_BOOK", "lines.1.bookId")]
        assert (await stock_of(engine, OTHER_PLENTY_BOOK), await order_count(engine)) == (before, orders)

    @pytest.mark.anyio
    async def test_out_of_stock_changes_nothing(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """A line the stock cannot cover is a user error (OUT_OF_STOCK, on that line); the other lines take nothing."""
        for first_line in (LOW_ID_BOOK, OTHER_PLENTY_BOOK):  # before and after the sold-out book's id
            before, orders = await stock_of(engine, first_line), await order_count(engine)
            lines = [line(first_line, 2), line(SOLD_OUT_BOOK, 1)]
            payload = data_of(await gql(client, PLACE, as_customer=CAROL, lines=lines))["placeOrder"]
            assert payload["order"] is None
            assert [(e["code"], e["field"]) for e in payload["errors"]] == [
                ("OUT_OF_STOCK", "lines.1.quantity")
            ]
            assert (await stock_of(engine, first_line), await order_count(engine)) == (before, orders)

    @pytest.mark.anyio
    async def test_anonymous_cannot_order(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        """Without a signed-in customer, placeOrder is an authentication error and writes nothing."""
        orders = await order_count(engine)
        body = await gql(client, PLACE, lines=[line(PLENTY_BOOK, 1)])
        assert_refused(body, "authenticat")
        assert await order_count(engine) == orders

    @pytest.mark.deep
    @pytest.mark.anyio
    async def test_concurrent_buyers_never_oversell(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        """20 buyers at once for 5 copies: exactly 5 orders, 15 OUT_OF_STOCK user errors, stock 0, no other error."""
        payloads: list[dict[str, Any]] = []

        async def buy() -> None:
            body = data_of(await gql(client, PLACE, as_customer=BUYERS, lines=[line(RACE_BOOK, 1)]))
            payloads.append(body["placeOrder"])

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(buy)
        placed = [p for p in payloads if p["order"] is not None]
        refused = [e["code"] for p in payloads for e in p["errors"]]
        assert (len(placed), refused) == (RACE_STOCK, ["OUT_OF_STOCK"] * (20 - RACE_STOCK))
        assert await stock_of(engine, RACE_BOOK) == 0


class TestMaskedErrors:
    """Task 6: Internal errors are masked."""

    @pytest.mark.anyio
    async def test_a_database_failure_reveals_nothing(self) -> None:
        """A failing database query (here: no tables at all) gives an error that names no table, SQL, driver or exception."""
        db.reset_database("ex12_empty")
        engine = db.make_async_engine("ex12_empty")
        try:
            transport = httpx.ASGITransport(app=ex.create_app(engine), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                body = await gql(http, "{ books(first: 2) { id title } }")
        finally:
            await engine.dispose()
        messages = error_messages(body)
        assert messages, f"no error reported: {body}"
        for secret in ("books", "select", "sqlite", "psycopg", "table", "relation", "error)", "exception"):
            assert secret not in messages.lower(), f"the error message reveals {secret!r}: {messages}"
