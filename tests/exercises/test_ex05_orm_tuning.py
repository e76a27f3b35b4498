"""Tests for ex05: reports within a query budget, aggregated in SQL, using indexes.

Most tests run on a small bookstore built here ("ex05"), shaped to catch the
classic mistakes: an author with 2 books and one with 40, a customer with 1
order and one with 30, a book whose sales are mostly cancelled orders, ties,
books without reviews. The reference answers are computed in plain Python from
the same seed rows. A few tests also compare with the full course data set.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.orm import Session

from coursekit import db
from coursekit.bookstore import Base
from coursekit.dataset import TABLE_ORDER, bookstore_engine
from coursekit.impl import load
from coursekit.querycount import count_queries
from coursekit.sqlinspect import capture_selects, explain, rows_returned

ex = load("ex05_orm_tuning")

pytestmark = pytest.mark.db

BUDGET = 3  # statements per report call, whatever the size of the answer

FEW_BOOKS_AUTHOR, MANY_BOOKS_AUTHOR, NO_BOOKS_AUTHOR, OTHER_AUTHOR = 1, 2, 3, 4
ONE_ORDER_CUSTOMER, THIRTY_ORDERS_CUSTOMER, NO_ORDERS_CUSTOMER = 1, 2, 3
CANCELLED_FAVOURITE = 45  # many copies in cancelled orders, one real copy
TIE_A, TIE_B = 46, 47  # equal copies sold, the top two; 47 has no reviews


# --------------------------------------------------------------------- seed data
@dataclass
class Seed:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        row.setdefault("id", len(self.rows[table]) + 1)
        self.rows[table].append(row)
        return row


def build_seed() -> Seed:
    rng = random.Random(505)
    seed = Seed()
    for name in ("Ada Fewbooks", "Boris Prolific", "Chloe Nobooks", "Dmitri Middle"):
        seed.add("authors", name=name, country="GB", born=1970)
    # Author 2 has 40 books, author 1 has 2, author 4 the rest; years repeat on
    # purpose, so the order within a year depends on the id tie-break.
    owners = [FEW_BOOKS_AUTHOR] * 2 + [MANY_BOOKS_AUTHOR] * 40 + [OTHER_AUTHOR] * 5
    for book_id, author_id in enumerate(owners, start=1):
        seed.add(
            "books",
            isbn=f"978{book_id:010d}",
            title=f"Book {book_id:02d} {rng.choice(['Tides', 'Maps', 'Salt', 'Glass'])}",
            author_id=author_id,
            genre="fiction",
            language="en",
            published_year=2000 + (47 - book_id) % 7,
            pages=200,
            price=Decimal("10.00") + book_id,
        )
    for customer_id in range(1, 24):
        seed.add(
            "customers",
            email=f"c{customer_id}@example.com",
            name=f"Customer {customer_id}",
            country="GB",
            joined_on=dt.date(2020, 1, 1),
        )
    start = dt.datetime(2024, 1, 1, 9, 0, 0)

    def order(customer_id: int, at: dt.datetime, status: str, lines: dict[int, int]) -> None:
        placed = seed.add("orders", customer_id=customer_id, placed_at=at, status=status)
        for book_id, quantity in lines.items():
            price = Decimal("9.99") + book_id % 5
            seed.add(
                "order_lines",
                order_id=placed["id"],
                book_id=book_id,
                quantity=quantity,
                unit_price=price,
            )

    # Customer 1: one order. Customer 3: none.
    order(ONE_ORDER_CUSTOMER, start, "paid", {3: 1, 10: 2})
    # Customer 2: thirty orders in shuffled insertion order (ids do not follow
    # time), two of them at the same instant (tie broken by id, descending).
    instants = [start + dt.timedelta(days=3 * i, hours=i) for i in range(29)]
    instants.append(instants[7])
    rng.shuffle(instants)
    for at in instants:
        books = rng.sample(range(1, 45), rng.randint(1, 3))
        status = rng.choice(["paid", "shipped", "shipped", "cancelled"])
        order(THIRTY_ORDERS_CUSTOMER, at, status, {b: rng.randint(1, 3) for b in books})
    # Background buyers.
    for customer_id in range(4, 24):
        for _ in range(4):
            at = start + dt.timedelta(minutes=rng.randint(0, 500_000))
            books = rng.sample(range(1, 45), rng.randint(1, 3))
            status = rng.choice(["paid", "shipped", "cancelled"])
            order(customer_id, at, status, {b: rng.randint(1, 3) for b in books})
    # The traps. Book 45: 60 copies in cancelled orders, 1 real copy.
    for customer_id in (4, 5, 6):
        order(customer_id, start, "cancelled", {CANCELLED_FAVOURITE: 20})
    order(7, start, "paid", {CANCELLED_FAVOURITE: 1})
    # Books 46 and 47: 40 copies each (the top two, tied); 46 has 8 reviews,
    # so joining reviews next to order lines would report 320 copies.
    for customer_id, status in ((8, "paid"), (9, "shipped"), (10, "paid"), (11, "shipped")):
        order(customer_id, start + dt.timedelta(days=1), status, {TIE_A: 10, TIE_B: 10})
    # Reviews: 2 to 6 for most books, none for every sixth book and for book 47.
    for book_id in range(1, 48):
        if book_id % 6 == 0 or book_id == TIE_B:
            continue
        count = 8 if book_id == TIE_A else rng.randint(2, 6)
        for customer_id in rng.sample(range(4, 24), count):
            seed.add(
                "reviews",
                book_id=book_id,
                customer_id=customer_id,
                rating=rng.randint(1, 5),
                title="Review",
                created_at=start,
            )
    seed.rows["stock"] = [{"book_id": book_id, "quantity": 5} for book_id in range(1, 48)]
    return seed


SEED = build_seed()


def by_id(table: str) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in SEED.rows[table]}


def mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def ratings_by_book(reviews: list[dict[str, Any]]) -> dict[int, list[int]]:
    ratings: dict[int, list[int]] = defaultdict(list)
    for review in reviews:
        ratings[review["book_id"]].append(review["rating"])
    return ratings


# ------------------------------------------------------- reference computations
def reference_bestsellers(rows: dict[str, list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    status = {o["id"]: o["status"] for o in rows["orders"]}
    books = {b["id"]: b for b in rows["books"]}
    authors = {a["id"]: a["name"] for a in rows["authors"]}
    ratings = ratings_by_book(rows["reviews"])
    copies: dict[int, int] = defaultdict(int)
    for line in rows["order_lines"]:
        if status[line["order_id"]] != "cancelled":
            copies[line["book_id"]] += line["quantity"]
    ranked = sorted(copies, key=lambda book_id: (-copies[book_id], book_id))
    result = []
    for book_id in ranked:
        book = books[book_id]
        author = authors[book["author_id"]]
        result.append((book_id, book["title"], author, copies[book_id], mean(ratings[book_id])))
    return result


def reference_author_page(
    rows: dict[str, list[dict[str, Any]]], author_id: int
) -> tuple[Any, ...] | None:
    author = next((a for a in rows["authors"] if a["id"] == author_id), None)
    if author is None:
        return None
    ratings = ratings_by_book(rows["reviews"])
    books = sorted(
        (b for b in rows["books"] if b["author_id"] == author_id),
        key=lambda b: (b["published_year"], b["id"]),
    )
    stats = [
        (b["id"], b["title"], b["published_year"], len(ratings[b["id"]]), mean(ratings[b["id"]]))
        for b in books
    ]
    return (author["id"], author["name"], author["country"], stats)


def reference_history(
    rows: dict[str, list[dict[str, Any]]], customer_id: int
) -> list[tuple[Any, ...]]:
    titles = {b["id"]: b["title"] for b in rows["books"]}
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in rows["order_lines"]:
        lines[line["order_id"]].append(line)
    orders = sorted(
        (o for o in rows["orders"] if o["customer_id"] == customer_id),
        key=lambda o: (o["placed_at"], o["id"]),
        reverse=True,
    )
    result = []
    for o in orders:
        own = sorted(lines[o["id"]], key=lambda line: line["id"])
        summary = [
            (ln["id"], ln["book_id"], titles[ln["book_id"]], ln["quantity"], ln["unit_price"])
            for ln in own
        ]
        total = sum((ln["quantity"] * ln["unit_price"] for ln in own), Decimal("0"))
        result.append((o["id"], o["placed_at"], o["status"], total, summary))
    return result


# ------------------------------------------------------ converting the answers
def approx_rating(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, abs=1e-6)


def bestseller_tuples(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (r.book_id, r.title, r.author_name, r.copies_sold, r.average_rating) for r in rows
    ]


def expected_bestsellers(reference: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*r[:4], approx_rating(r[4])) for r in reference]


def page_tuple(page: Any) -> tuple[Any, ...] | None:
    if page is None:
        return None
    stats = [
        (b.book_id, b.title, b.published_year, b.review_count, b.average_rating)
        for b in page.books
    ]
    return (page.author_id, page.name, page.country, stats)


def expected_page(reference: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    if reference is None:
        return None
    *head, stats = reference
    return (*head, [(*s[:4], approx_rating(s[4])) for s in stats])


def history_tuples(orders: list[Any]) -> list[tuple[Any, ...]]:
    result = []
    for o in orders:
        lines = [(ln.line_id, ln.book_id, ln.title, ln.quantity, ln.unit_price) for ln in o.lines]
        result.append((o.order_id, o.placed_at, o.status, o.total, lines))
    return result


# ----------------------------------------------------------------- databases
@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The small seeded bookstore, rebuilt once per test run."""
    engine = db.fresh_engine("ex05")
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for name in TABLE_ORDER:
            if SEED.rows[name]:
                connection.execute(insert(Base.metadata.tables[name]), SEED.rows[name])
    with engine.connect():  # connect once, so dialect start-up queries are not counted
        pass
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def full_engine() -> Iterator[Engine]:
    """The whole course data set (loaded once, then reused)."""
    engine = bookstore_engine("ex05_full")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def full_rows(full_engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with full_engine.connect() as connection:
        return {
            name: [dict(row._mapping) for row in connection.execute(select(table))]
            for name, table in Base.metadata.tables.items()
            if name in ("authors", "books", "orders", "order_lines", "reviews")
        }


def call(engine: Engine, function: Any, *args: Any) -> Any:
    """Call a report with a fresh session (an empty identity map, like a new request)."""
    with Session(engine) as session:
        return function(session, *args)


def statements_for(engine: Engine, function: Any, *args: Any) -> int:
    with count_queries(engine) as queries:
        call(engine, function, *args)
    return queries.count


def rows_fetched(engine: Engine, function: Any, *args: Any) -> int:
    """How many rows the report's SELECT statements return, in total."""
    with capture_selects(engine) as sent:
        call(engine, function, *args)
    return rows_returned(engine, sent)


def plans(engine: Engine, function: Any, *args: Any) -> list[str]:
    """The query plan of each SELECT the report sends (one text per statement).

    On PostgreSQL, sequential scans are switched off for the EXPLAIN: these tables
    are tiny, so the question is "can an index serve this lookup?".
    """
    with capture_selects(engine) as sent:
        call(engine, function, *args)
    return [explain(engine, statement, prefer_indexes=True) for statement in sent]


def indexes_leading_with(engine: Engine, table: str, column: str) -> set[str]:
    with engine.connect() as connection:
        found = inspect(connection).get_indexes(table)
    return {str(ix["name"]) for ix in found if ix["column_names"][:1] == [column]}


def searches_with_index(plan: str, index_names: set[str]) -> bool:
    names = "|".join(map(re.escape, sorted(index_names))) or "(?!)"
    patterns = (
        rf"SEARCH \S+( AS \S+)? USING (COVERING )?INDEX ({names})\b",  # SQLite
        rf"Index (Only )?Scan (Backward )?using ({names}) ",  # PostgreSQL
        rf"Bitmap Index Scan on ({names})\b",
    )
    return any(re.search(p, plan) for p in patterns)


def scans_whole_table(plan: str, table: str) -> bool:
    return bool(re.search(rf"(^|\n)\s*SCAN {table}\b|Seq Scan on {table}\b", plan))


# ----------------------------------------------------------------------- tests
class TestCreateIndexes:
    """create_indexes: indexes for the reports' lookups."""

    def test_adds_an_index_on_books_author_id(self, engine: Engine) -> None:
        """After create_indexes, some index on books starts with author_id."""
        ex.create_indexes(engine)
        assert indexes_leading_with(engine, "books", "author_id"), inspect(engine).get_indexes(
            "books"
        )

    def test_adds_an_index_on_orders_customer_id(self, engine: Engine) -> None:
        """After create_indexes, some index on orders starts with customer_id."""
        ex.create_indexes(engine)
        assert indexes_leading_with(engine, "orders", "customer_id")

    def test_can_run_twice(self, engine: Engine) -> None:
        """Calling create_indexes again (e.g. at every start-up) does not fail."""
        ex.create_indexes(engine)
        ex.create_indexes(engine)


class TestBestsellers:
    """bestsellers: top books by copies sold, computed in SQL."""

    def test_matches_reference(self, engine: Engine) -> None:
        """The top 10 equal the reference: ids, titles, authors, copies, average ratings."""
        got = bestseller_tuples(call(engine, ex.bestsellers, 10))
        assert got == expected_bestsellers(reference_bestsellers(SEED.rows)[:10])

    def test_cancelled_orders_do_not_count(self, engine: Engine) -> None:
        """Book 45 sold 60 copies in cancelled orders and 1 for real: it counts 1."""
        rows = call(engine, ex.bestsellers, 50)
        copies = {r.book_id: r.copies_sold for r in rows}
        assert copies.get(CANCELLED_FAVOURITE) == 1
        assert rows[0].book_id != CANCELLED_FAVOURITE

    def test_ties_broken_by_book_id(self, engine: Engine) -> None:
        """Books 46 and 47 both sold 40 copies: 46 comes first (book_id ascending)."""
        rows = call(engine, ex.bestsellers, 2)
        assert [(r.book_id, r.copies_sold) for r in rows] == [(TIE_A, 40), (TIE_B, 40)]

    def test_reviews_do_not_multiply_copies(self, engine: Engine) -> None:
        """Book 46 has 8 reviews and 40 copies sold: still 40, average of its 8 ratings."""
        top = call(engine, ex.bestsellers, 1)[0]
        ratings = ratings_by_book(SEED.rows["reviews"])[TIE_A]
        assert (top.copies_sold, top.average_rating) == (40, pytest.approx(mean(ratings)))

    def test_book_without_reviews_has_no_average(self, engine: Engine) -> None:
        """Book 47 sold copies but has no review: it is listed, with average_rating None."""
        rows = call(engine, ex.bestsellers, 2)
        assert [r.average_rating for r in rows if r.book_id == TIE_B] == [None]

    def test_limit_is_respected(self, engine: Engine) -> None:
        """bestsellers(session, 3) returns exactly the reference's first 3 rows."""
        got = bestseller_tuples(call(engine, ex.bestsellers, 3))
        assert got == expected_bestsellers(reference_bestsellers(SEED.rows)[:3])

    def test_rejects_a_limit_below_one(self, engine: Engine) -> None:
        """A limit of 0 is a caller's bug: ValueError."""
        with pytest.raises(ValueError, match="limit"):
            call(engine, ex.bestsellers, 0)

    def test_matches_reference_on_full_data_set(
        self, full_engine: Engine, full_rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        """On the whole course data set, the top 20 equal the reference."""
        got = bestseller_tuples(call(full_engine, ex.bestsellers, 20))
        assert got == expected_bestsellers(reference_bestsellers(full_rows)[:20])


class TestAuthorPage:
    """author_page: books with review stats computed in SQL."""

    @pytest.mark.parametrize("author_id", [FEW_BOOKS_AUTHOR, MANY_BOOKS_AUTHOR, OTHER_AUTHOR])
    def test_matches_reference(self, engine: Engine, author_id: int) -> None:
        """Name, country and every book's (id, title, year, review count, average) match."""
        got = page_tuple(call(engine, ex.author_page, author_id))
        assert got == expected_page(reference_author_page(SEED.rows, author_id))

    def test_books_oldest_first_then_by_id(self, engine: Engine) -> None:
        """Books are ordered by published_year, then book_id (several share a year)."""
        page = call(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        keys = [(b.published_year, b.book_id) for b in page.books]
        assert keys == sorted(keys)
        assert len(keys) == 40

    def test_books_without_reviews_count_zero(self, engine: Engine) -> None:
        """A book without reviews is listed with review_count 0 and average_rating None."""
        page = call(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        unreviewed = [(b.review_count, b.average_rating) for b in page.books if b.book_id == 6]
        assert unreviewed == [(0, None)]

    def test_author_without_books(self, engine: Engine) -> None:
        """An author with no books still has a page, with an empty book list."""
        page = call(engine, ex.author_page, NO_BOOKS_AUTHOR)
        assert page is not None
        assert (page.author_id, page.name, page.books) == (NO_BOOKS_AUTHOR, "Chloe Nobooks", [])

    def test_unknown_author_is_none(self, engine: Engine) -> None:
        """author_page for an id that does not exist returns None."""
        assert call(engine, ex.author_page, 999) is None

    def test_matches_reference_on_full_data_set(
        self, full_engine: Engine, full_rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        """On the whole data set, the page of the author with most books matches."""
        counts: dict[int, int] = defaultdict(int)
        for book in full_rows["books"]:
            counts[book["author_id"]] += 1
        busiest = max(counts, key=lambda a: (counts[a], -a))
        got = page_tuple(call(full_engine, ex.author_page, busiest))
        assert got == expected_page(reference_author_page(full_rows, busiest))


class TestCustomerHistory:
    """customer_history: orders newest first with their lines."""

    @pytest.mark.parametrize("customer_id", [ONE_ORDER_CUSTOMER, THIRTY_ORDERS_CUSTOMER])
    def test_matches_reference(self, engine: Engine, customer_id: int) -> None:
        """Every order (id, time, status, total) and line (id, book, title, qty, price) match."""
        got = history_tuples(call(engine, ex.customer_history, customer_id))
        assert got == reference_history(SEED.rows, customer_id)

    def test_newest_first_ties_by_id_descending(self, engine: Engine) -> None:
        """Orders run newest first; two placed at the same instant: higher order_id first."""
        orders = call(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        keys = [(o.placed_at, o.order_id) for o in orders]
        assert keys == sorted(keys, reverse=True)
        assert len(keys) == 30

    def test_cancelled_orders_are_listed(self, engine: Engine) -> None:
        """A history shows cancelled orders too, with their status."""
        orders = call(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        seeded = [o for o in SEED.rows["orders"] if o["customer_id"] == THIRTY_ORDERS_CUSTOMER]
        expected = sorted(o["status"] for o in seeded)
        assert "cancelled" in expected
        assert sorted(o.status for o in orders) == expected

    def test_customer_without_orders(self, engine: Engine) -> None:
        """A customer who never ordered has an empty history."""
        assert call(engine, ex.customer_history, NO_ORDERS_CUSTOMER) == []

    def test_matches_reference_on_full_data_set(
        self, full_engine: Engine, full_rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        """On the whole data set, the history of the customer with most orders matches."""
        counts: dict[int, int] = defaultdict(int)
        for order in full_rows["orders"]:
            counts[order["customer_id"]] += 1
        busiest = max(counts, key=lambda c: (counts[c], -c))
        got = history_tuples(call(full_engine, ex.customer_history, busiest))
        assert got == reference_history(full_rows, busiest)


class TestQueryBudget:
    """Query budget: the same few statements at any size."""

    def test_author_page_constant(self, engine: Engine) -> None:
        """author_page sends the same number of statements (at most 3) for 2 or 40 books."""
        few = statements_for(engine, ex.author_page, FEW_BOOKS_AUTHOR)
        many = statements_for(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        assert (few, many) == (few, few), f"2 books: {few} statements, 40 books: {many}"
        assert few <= BUDGET

    def test_customer_history_constant(self, engine: Engine) -> None:
        """customer_history sends the same number (at most 3) for 1 order or 30 orders."""
        one = statements_for(engine, ex.customer_history, ONE_ORDER_CUSTOMER)
        thirty = statements_for(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        assert (one, thirty) == (one, one), f"1 order: {one} statements, 30 orders: {thirty}"
        assert one <= BUDGET

    def test_bestsellers_constant(self, engine: Engine) -> None:
        """bestsellers sends the same number of statements (at most 3) for the top 3 or 30."""
        three = statements_for(engine, ex.bestsellers, 3)
        thirty = statements_for(engine, ex.bestsellers, 30)
        assert (three, thirty) == (three, three), f"top 3: {three}, top 30: {thirty}"
        assert three <= BUDGET


class TestAggregatesInSql:
    """Aggregates in SQL: report rows come back, not raw rows."""

    def test_bestsellers_fetch_about_limit_rows(self, engine: Engine) -> None:
        """bestsellers(5) fetches at most 4 x 5 + 4 rows in all (not every order line)."""
        fetched = rows_fetched(engine, ex.bestsellers, 5)
        assert len(SEED.rows["order_lines"]) > 200  # what Python-side summing would fetch
        assert fetched <= 4 * 5 + 4, f"{fetched} rows fetched for a top 5"

    def test_author_page_does_not_fetch_reviews(self, engine: Engine) -> None:
        """author_page for 40 books fetches at most 2 rows per book + 2 (not every review)."""
        fetched = rows_fetched(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        books = by_id("books")
        reviews = sum(
            1 for r in SEED.rows["reviews"] if books[r["book_id"]]["author_id"] == MANY_BOOKS_AUTHOR
        )
        assert reviews > 2 * 40 + 2  # what loading every review would fetch
        assert fetched <= 2 * 40 + 2, f"{fetched} rows fetched for an author with 40 books"


class TestQueryPlans:
    """Query plans: lookups search an index, not the table."""

    def test_author_page_searches_books_by_author_index(self, engine: Engine) -> None:
        """After create_indexes, author_page finds the books via an index on author_id."""
        ex.create_indexes(engine)
        names = indexes_leading_with(engine, "books", "author_id")
        texts = plans(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        assert any(searches_with_index(t, names) for t in texts), "\n---\n".join(texts)
        assert not any(scans_whole_table(t, "books") for t in texts), "\n---\n".join(texts)

    def test_customer_history_searches_orders_by_customer_index(self, engine: Engine) -> None:
        """After create_indexes, customer_history finds the orders via a customer_id index."""
        ex.create_indexes(engine)
        names = indexes_leading_with(engine, "orders", "customer_id")
        texts = plans(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        assert any(searches_with_index(t, names) for t in texts), "\n---\n".join(texts)
        assert not any(scans_whole_table(t, "orders") for t in texts), "\n---\n".join(texts)
