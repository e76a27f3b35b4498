"""Tests for ex05: reports within a query budget, aggregated in SQL, using indexes.

Most tests run on a small bookstore built here, shaped to catch the classic
mistakes: an author with 2 books, one with 5 and one with 40; a customer with 1
order, one with 4 and one with 30; a book whose sales are mostly cancelled
orders; books without reviews; and ties everywhere (four books sold the same
number of copies, books share a year, orders share an instant). The reference
answers are computed in plain Python from the same seed rows.

Two copies of that bookstore exist. The reports' answers are checked on one
without secondary indexes, where the database has to sort the rows itself: an
ORDER BY that forgets a tie-break then shows, even on SQLite (which otherwise
hands tied rows over in rowid order). The query plans are checked on the other,
after ``create_indexes``. Rows are inserted in a shuffled order, so a table's
physical order (which PostgreSQL returns when nothing is sorted) is not id order.

Deep tests compare the reports with the reference on the whole course data set
and on random bookstores full of ties.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.orm import Session

from coursekit import db
from coursekit.bookstore import Base, Book, Order
from coursekit.dataset import TABLE_ORDER, bookstore_engine
from coursekit.impl import load
from coursekit.querycount import count_queries
from coursekit.sqlinspect import CapturedStatement, capture_selects, explain, rows_returned

ex = load("ex05_orm_tuning")

pytestmark = pytest.mark.db

BUDGET = 3  # statements per report call, whatever the size of the answer

FEW_BOOKS_AUTHOR, MANY_BOOKS_AUTHOR, NO_BOOKS_AUTHOR, MIDDLE_AUTHOR = 1, 2, 3, 4
ONE_ORDER_CUSTOMER, THIRTY_ORDERS_CUSTOMER, NO_ORDERS_CUSTOMER = 1, 2, 3
FOUR_ORDERS_CUSTOMER = 20
CANCELLED_FAVOURITE = 45  # many copies in cancelled orders, one real copy
TIED_BOOKS = (43, 44, 46, 47)  # 40 copies each, the top four; 47 has no reviews
MOST_REVIEWED, UNREVIEWED = 46, 47
UNREVIEWED_OF_MANY = 6  # a book of author 2 without reviews


# --------------------------------------------------------------------- seed data
@dataclass
class Seed:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        row.setdefault("id", len(self.rows[table]) + 1)
        self.rows[table].append(row)
        return row

    def order(self, customer_id: int, at: dt.datetime, status: str, lines: dict[int, int]) -> None:
        placed = self.add("orders", customer_id=customer_id, placed_at=at, status=status)
        for book_id, quantity in lines.items():
            self.add(
                "order_lines",
                order_id=placed["id"],
                book_id=book_id,
                quantity=quantity,
                unit_price=Decimal("9.99") + book_id % 5,
            )


START = dt.datetime(2024, 1, 1, 9, 0, 0)


def add_book(seed: Seed, rng: random.Random, author_id: int, year: int) -> None:
    book_id = len(seed.rows["books"]) + 1
    seed.add(
        "books",
        isbn=f"978{book_id:010d}",
        title=f"{rng.choice(['Tides', 'Maps', 'Salt', 'Glass'])} {book_id:02d}",
        author_id=author_id,
        genre="fiction",
        language="en",
        published_year=year,
        pages=200,
        price=Decimal("10.00") + book_id,
    )


def add_customers(seed: Seed, count: int) -> None:
    for customer_id in range(1, count + 1):
        seed.add(
            "customers",
            email=f"c{customer_id}@example.com",
            name=f"Customer {customer_id}",
            country="GB",
            joined_on=dt.date(2020, 1, 1),
        )


def random_lines(rng: random.Random, books: range) -> dict[int, int]:
    # Lines of one order are created in random book order, so line ids and
    # book ids disagree (lines must come back by line id).
    return {b: rng.randint(1, 3) for b in rng.sample(books, rng.randint(1, 3))}


def build_seed() -> Seed:
    rng = random.Random(505)
    seed = Seed()
    for name in ("Ada Fewbooks", "Boris Prolific", "Chloe Nobooks", "Dmitri Middle"):
        seed.add("authors", name=name, country="GB", born=1970)
    # Author 2 has 40 books, author 1 has 2, author 4 the last 5 (43 to 47);
    # years repeat, so the order within a year depends on the id tie-break.
    owners = [FEW_BOOKS_AUTHOR] * 2 + [MANY_BOOKS_AUTHOR] * 40 + [MIDDLE_AUTHOR] * 5
    for book_id, author_id in enumerate(owners, start=1):
        add_book(seed, rng, author_id, 2000 + (47 - book_id) % 7)
    add_customers(seed, 23)
    everyday = range(1, 43)  # books 43 to 47 only sell in the trap orders below

    # Customer 1: one order. Customer 3: none.
    seed.order(ONE_ORDER_CUSTOMER, START, "paid", {3: 1, 10: 2, 7: 1})
    # Customer 2: thirty orders in shuffled order (ids do not follow time), with
    # three groups placed at the same instant (2, 3 and 3 orders).
    instants = [START + dt.timedelta(days=3 * i, hours=i) for i in range(25)]
    instants += [instants[4], instants[11], instants[11], instants[19], instants[19]]
    rng.shuffle(instants)
    for at in instants:
        status = rng.choice(["paid", "shipped", "shipped", "cancelled"])
        seed.order(THIRTY_ORDERS_CUSTOMER, at, status, random_lines(rng, everyday))
    # Background buyers, four orders each.
    for customer_id in range(4, 24):
        for _ in range(4):
            at = START + dt.timedelta(minutes=rng.randint(0, 500_000))
            status = rng.choice(["paid", "shipped", "cancelled"])
            seed.order(customer_id, at, status, random_lines(rng, everyday))
    # Book 45: 60 copies in cancelled orders, 1 real copy.
    for customer_id in (4, 5, 6):
        seed.order(customer_id, START, "cancelled", {CANCELLED_FAVOURITE: 20})
    seed.order(7, START, "paid", {CANCELLED_FAVOURITE: 1})
    # Books 43, 44, 46 and 47: 40 copies each, the top four, tied. Book 46 has
    # 8 reviews, so joining reviews next to order lines would report 320 copies.
    for customer_id, status in ((8, "paid"), (9, "shipped"), (10, "paid"), (11, "shipped")):
        lines = {book_id: 10 for book_id in reversed(TIED_BOOKS)}
        seed.order(customer_id, START + dt.timedelta(days=1), status, lines)
    # Reviews: 2 to 6 for most books, none for every sixth book and for book 47.
    for book_id in range(1, 48):
        if book_id % 6 == 0 or book_id == UNREVIEWED:
            continue
        count = 8 if book_id == MOST_REVIEWED else rng.randint(2, 6)
        for customer_id in rng.sample(range(4, 24), count):
            seed.add(
                "reviews",
                book_id=book_id,
                customer_id=customer_id,
                rating=rng.randint(1, 5),
                title="Review",
                created_at=START,
            )
    seed.rows["stock"] = [{"book_id": book_id, "quantity": 5} for book_id in range(1, 48)]
    return seed


def build_random_seed(number: int) -> Seed:
    """A small random bookstore with many ties: few years, few instants, few quantities."""
    rng = random.Random(number)
    seed = Seed()
    authors = rng.randint(3, 6)
    for author_id in range(1, authors + 1):
        seed.add("authors", name=f"Author {author_id}", country="FR", born=1960)
    for _ in range(rng.randint(15, 30)):
        add_book(seed, rng, rng.randint(1, authors), rng.choice([1999, 2005, 2010]))
    books = range(1, len(seed.rows["books"]) + 1)
    add_customers(seed, 12)
    instants = [START + dt.timedelta(days=d) for d in range(5)]
    for _ in range(60):
        customer_id = rng.randint(1, 12)
        status = rng.choice(["paid", "shipped", "cancelled"])
        lines = {b: rng.randint(1, 2) for b in rng.sample(books, rng.randint(1, 4))}
        seed.order(customer_id, rng.choice(instants), status, lines)
    for book_id in books:
        for customer_id in rng.sample(range(1, 13), rng.randint(0, 4)):
            seed.add(
                "reviews",
                book_id=book_id,
                customer_id=customer_id,
                rating=rng.randint(1, 5),
                title="Review",
                created_at=START,
            )
    return seed


SEED = build_seed()


def mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def ratings_by_book(reviews: list[dict[str, Any]]) -> dict[int, list[int]]:
    ratings: dict[int, list[int]] = defaultdict(list)
    for review in reviews:
        ratings[review["book_id"]].append(review["rating"])
    return ratings


# ------------------------------------------------------- reference computations
Rows = dict[str, list[dict[str, Any]]]


def reference_bestsellers(rows: Rows) -> list[tuple[Any, ...]]:
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


def reference_author_page(rows: Rows, author_id: int) -> tuple[Any, ...] | None:
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


def reference_history(rows: Rows, customer_id: int) -> list[tuple[Any, ...]]:
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
            (ln["id"], ln["book_id"], titles[ln["book_id"]], ln["quantity"], ln["unit_price"]) for ln in own
        ]
        total = sum((ln["quantity"] * ln["unit_price"] for ln in own), Decimal("0"))
        result.append((o["id"], o["placed_at"], o["status"], total, summary))
    return result


# ------------------------------------------------------ converting the answers
def approx_rating(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, abs=1e-6)


def bestseller_tuples(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.book_id, r.title, r.author_name, r.copies_sold, r.average_rating) for r in rows]


def expected_bestsellers(reference: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*r[:4], approx_rating(r[4])) for r in reference]


def page_tuple(page: Any) -> tuple[Any, ...] | None:
    if page is None:
        return None
    stats = [(b.book_id, b.title, b.published_year, b.review_count, b.average_rating) for b in page.books]
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


def value_types(values: list[Any]) -> set[str]:
    return {type(value).__name__ for value in values}


# ----------------------------------------------------------------- databases
def seeded_engine(name: str, seed: Seed) -> Engine:
    """A fresh database holding ``seed``, rows inserted in a shuffled order."""
    engine = db.fresh_engine(name)
    Base.metadata.create_all(engine)
    shuffle = random.Random(name)
    with engine.begin() as connection:
        for table in TABLE_ORDER:
            rows = list(seed.rows[table])
            shuffle.shuffle(rows)
            if rows:
                connection.execute(insert(Base.metadata.tables[table]), rows)
    if engine.dialect.name == "postgresql":
        # Fresh statistics now, so autovacuum cannot change the plans mid-run.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"ANALYZE {', '.join(TABLE_ORDER)}")
    with engine.connect():  # connect once, so dialect start-up queries are not counted
        pass
    return engine


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The small bookstore without secondary indexes: checks the reports' answers."""
    engine = seeded_engine("ex05", SEED)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def indexed_engine(engine: Engine) -> Iterator[Engine]:
    """The same bookstore, for the plan tests (which call create_indexes on it)."""
    if engine.dialect.name == "sqlite":
        # Copying the file is faster than creating the tables and rows again.
        db.reset_database("ex05_indexed")  # no stale journal next to the copy
        shutil.copyfile(str(engine.url.database), str(db.sync_url("ex05_indexed").database))
        indexed = db.make_engine("ex05_indexed")
    else:
        indexed = seeded_engine("ex05_indexed", SEED)
    yield indexed
    indexed.dispose()


@pytest.fixture(scope="module")
def full_engine() -> Iterator[Engine]:
    """The whole course data set (loaded once, then reused)."""
    engine = bookstore_engine("ex05_full")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def full_rows(full_engine: Engine) -> Rows:
    with full_engine.connect() as connection:
        return {
            name: [dict(row._mapping) for row in connection.execute(select(table))]
            for name, table in Base.metadata.tables.items()
            if name in ("authors", "books", "orders", "order_lines", "reviews")
        }


RANDOM_SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def random_bookstores() -> Iterator[list[tuple[Engine, Seed]]]:
    """Three random bookstores full of ties, without secondary indexes."""
    seeds = {n: build_random_seed(n) for n in RANDOM_SEEDS}
    stores = [(seeded_engine(f"ex05_random{n}", seed), seed) for n, seed in seeds.items()]
    yield stores
    for engine, _ in stores:
        engine.dispose()


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


# -------------------------------------------------------------------- plans
def plan_of(engine: Engine, statement: CapturedStatement) -> str:
    """The plan of one statement: SQLite EXPLAIN QUERY PLAN, or PostgreSQL EXPLAIN.

    On PostgreSQL, sequential scans are switched off for the EXPLAIN: these tables
    are tiny, so the question is "can an index serve this lookup?".
    """
    return explain(engine, statement, prefer_indexes=True)


def report_plans(engine: Engine, function: Any, *args: Any) -> list[str]:
    """The plan of each SELECT a report sends (one text per statement)."""
    with capture_selects(engine) as sent:
        call(engine, function, *args)
    return [plan_of(engine, statement) for statement in sent]


def lookup_plan(engine: Engine, query: Any) -> str:
    """The plan of one of the test's own queries, as the engine would run it."""
    with capture_selects(engine) as sent, engine.connect() as connection:
        connection.execute(query).all()
    return plan_of(engine, sent[0])


def reads_table(plan: str, table: str) -> bool:
    return bool(re.search(rf"\b(SCAN|SEARCH|on) {table}\b", plan))


def indexes_leading_with(engine: Engine, table: str, column: str) -> set[str]:
    """The names of ``table``'s indexes whose first column is ``column``."""
    with engine.connect() as connection:
        found = inspect(connection).get_indexes(table)
    return {str(ix["name"]) for ix in found if ix["column_names"][:1] == [column]}


def searches_by(engine: Engine, plan: str, table: str, column: str) -> bool:
    """The plan looks ``table`` rows up by ``column`` in an index that starts with it.

    An index whose first column is another one can still be read from end to end
    (PostgreSQL then shows an "Index Scan" with the condition): that is a scan of
    the whole index, not a lookup.
    """
    names = "|".join(map(re.escape, sorted(indexes_leading_with(engine, table, column)))) or "(?!)"
    patterns = (
        rf"SEARCH {table}( AS \S+)? USING (COVERING )?INDEX ({names}) \({column}=\?",  # SQLite
        rf"Index (Only )?Scan( Backward)? using ({names}) on {table}\b",  # PostgreSQL
        rf"Bitmap Index Scan on ({names})\b",
    )
    return any(re.search(pattern, plan) for pattern in patterns)


def scans_whole_table(plan: str, table: str) -> bool:
    return bool(re.search(rf"(^|\n)\s*SCAN {table}\b|Seq Scan on {table}\b", plan))


def sorts(plan: str) -> bool:
    """The plan has a sort step (rather than reading rows in index order)."""
    return bool(
        re.search(r"USE TEMP B-TREE FOR (RIGHT PART OF |LAST \d+ TERMS OF )?ORDER BY", plan)
        or re.search(r"(^|->)\s*(Incremental )?Sort\b", plan, re.MULTILINE)
    )


def shown(plans: list[str]) -> str:
    return "\n---\n".join(plans)


# ----------------------------------------------------------------------- tests
# The first tests of a run build both seeded databases in their setup: a few
# tenths of a second on SQLite, more on PostgreSQL and on a busy machine.
@pytest.mark.time_limit(15)
class TestIndexes:
    """Task 1: the reports' lookups can use an index."""

    def test_books_of_an_author_are_found_through_an_index(self, indexed_engine: Engine) -> None:
        """After create_indexes, "the books of author X" is an index lookup, not a table scan."""
        ex.create_indexes(indexed_engine)
        found = lookup_plan(indexed_engine, select(Book).where(Book.author_id == FEW_BOOKS_AUTHOR))
        assert searches_by(indexed_engine, found, "books", "author_id"), found
        assert not scans_whole_table(found, "books"), found

    def test_orders_of_a_customer_come_from_an_index_newest_first(self, indexed_engine: Engine) -> None:
        """After create_indexes, a customer's orders come from an index, newest first, with no sort step."""
        ex.create_indexes(indexed_engine)
        query = (
            select(Order)
            .where(Order.customer_id == THIRTY_ORDERS_CUSTOMER)
            .order_by(Order.placed_at.desc(), Order.id.desc())
        )
        found = lookup_plan(indexed_engine, query)
        assert searches_by(indexed_engine, found, "orders", "customer_id"), found
        assert not sorts(found), found

    def test_can_run_twice(self, indexed_engine: Engine) -> None:
        """Calling create_indexes again (e.g. at every start-up) does not fail."""
        ex.create_indexes(indexed_engine)
        ex.create_indexes(indexed_engine)


class TestBestsellers:
    """Task 2: the best-selling books, counted by the database."""

    def test_matches_reference(self, engine: Engine) -> None:
        """The top 10 are the right books, titles, authors, copies and average ratings."""
        got = bestseller_tuples(call(engine, ex.bestsellers, 10))
        assert got == expected_bestsellers(reference_bestsellers(SEED.rows)[:10])

    def test_cancelled_orders_do_not_count(self, engine: Engine) -> None:
        """Book 45 sold 60 copies in cancelled orders and 1 for real: it counts 1."""
        rows = call(engine, ex.bestsellers, 50)
        copies = {r.book_id: r.copies_sold for r in rows}
        assert copies.get(CANCELLED_FAVOURITE) == 1
        assert rows[0].book_id != CANCELLED_FAVOURITE

    def test_ties_broken_by_book_id(self, engine: Engine) -> None:
        """Books 43, 44, 46 and 47 all sold 40 copies: they come first, by book_id ascending."""
        rows = call(engine, ex.bestsellers, 4)
        assert [(r.book_id, r.copies_sold) for r in rows] == [(b, 40) for b in TIED_BOOKS]

    def test_reviews_do_not_multiply_copies(self, engine: Engine) -> None:
        """Book 46 has 8 reviews and 40 copies sold: still 40, with the mean of its 8 ratings."""
        rows = call(engine, ex.bestsellers, 4)
        ratings = ratings_by_book(SEED.rows["reviews"])[MOST_REVIEWED]
        found = [(r.copies_sold, r.average_rating) for r in rows if r.book_id == MOST_REVIEWED]
        assert found == [(40, pytest.approx(mean(ratings)))]

    def test_book_without_reviews_has_no_average(self, engine: Engine) -> None:
        """Book 47 sold copies but has no review: it is listed, with average_rating None."""
        rows = call(engine, ex.bestsellers, 4)
        assert [r.average_rating for r in rows if r.book_id == UNREVIEWED] == [None]

    def test_values_are_plain_python_types(self, engine: Engine) -> None:
        """Rows are BestsellerRow with int copies and float (or None) averages, on any database."""
        rows = call(engine, ex.bestsellers, 10)
        assert value_types(rows) == {"BestsellerRow"}
        assert value_types([r.copies_sold for r in rows]) == {"int"}
        assert value_types([r.average_rating for r in rows]) <= {"float", "NoneType"}

    def test_limit_is_respected(self, engine: Engine) -> None:
        """bestsellers(session, 3) returns exactly the first 3 rows of the ranking."""
        got = bestseller_tuples(call(engine, ex.bestsellers, 3))
        assert got == expected_bestsellers(reference_bestsellers(SEED.rows)[:3])

    def test_rejects_a_limit_below_one(self, engine: Engine) -> None:
        """A limit of 0 is a caller's bug: ValueError."""
        with pytest.raises(ValueError, match="limit"):
            call(engine, ex.bestsellers, 0)

    def test_same_number_of_statements_for_any_limit(self, engine: Engine) -> None:
        """bestsellers sends the same number of statements (at most 3) for the top 1, 3 and 30."""
        counts = [statements_for(engine, ex.bestsellers, n) for n in (1, 3, 30)]
        assert counts == [counts[0]] * 3, f"top 1, 3, 30: {counts} statements"
        assert counts[0] <= BUDGET, f"{counts[0]} statements (budget {BUDGET})"

    def test_fetches_about_limit_rows(self, engine: Engine) -> None:
        """bestsellers(5) fetches at most 4 x 5 + 4 rows in all, not every order line."""
        fetched = rows_fetched(engine, ex.bestsellers, 5)
        assert len(SEED.rows["order_lines"]) > 200  # what Python-side summing would fetch
        assert fetched <= 4 * 5 + 4, f"{fetched} rows fetched for a top 5"

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_matches_reference_on_full_data_set(self, full_engine: Engine, full_rows: Rows) -> None:
        """On the whole course data set, the top 20 are the right rows."""
        got = bestseller_tuples(call(full_engine, ex.bestsellers, 20))
        assert got == expected_bestsellers(reference_bestsellers(full_rows)[:20])

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_matches_reference_on_random_bookstores(
        self, random_bookstores: list[tuple[Engine, Seed]]
    ) -> None:
        """On random bookstores full of ties, every ranking is right, ties by book_id."""
        for store, seed in random_bookstores:
            got = bestseller_tuples(call(store, ex.bestsellers, 50))
            assert got == expected_bestsellers(reference_bestsellers(seed.rows)[:50])


class TestAuthorPage:
    """Task 3: an author's books with review stats, counted by the database."""

    @pytest.mark.parametrize("author_id", [FEW_BOOKS_AUTHOR, MANY_BOOKS_AUTHOR, MIDDLE_AUTHOR])
    def test_matches_reference(self, engine: Engine, author_id: int) -> None:
        """Name, country and every book's (id, title, year, review count, average) are right."""
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
        found = [(b.review_count, b.average_rating) for b in page.books if b.book_id == 6]
        assert found == [(0, None)]

    def test_values_are_plain_python_types(self, engine: Engine) -> None:
        """The page is an AuthorPage of BookStats, with float (or None) averages on any database."""
        page = call(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        assert value_types([page]) == {"AuthorPage"}
        assert value_types(page.books) == {"BookStats"}
        assert value_types([b.review_count for b in page.books]) == {"int"}
        assert value_types([b.average_rating for b in page.books]) <= {"float", "NoneType"}

    def test_author_without_books(self, engine: Engine) -> None:
        """An author with no books still has a page, with an empty book list."""
        page = call(engine, ex.author_page, NO_BOOKS_AUTHOR)
        assert page is not None
        assert (page.author_id, page.name, page.books) == (NO_BOOKS_AUTHOR, "Chloe Nobooks", [])

    def test_unknown_author_is_none(self, engine: Engine) -> None:
        """author_page for an id that does not exist returns None."""
        assert call(engine, ex.author_page, 999) is None

    def test_same_number_of_statements_for_any_author(self, engine: Engine) -> None:
        """author_page sends the same number of statements (at most 3) for 2, 5 or 40 books."""
        counts = [
            statements_for(engine, ex.author_page, a)
            for a in (FEW_BOOKS_AUTHOR, MIDDLE_AUTHOR, MANY_BOOKS_AUTHOR)
        ]
        assert counts == [counts[0]] * 3, f"2, 5, 40 books: {counts} statements"
        assert counts[0] <= BUDGET, f"{counts[0]} statements (budget {BUDGET})"

    def test_does_not_fetch_the_reviews(self, engine: Engine) -> None:
        """author_page for 40 books fetches at most 2 rows per book + 2, not every review."""
        fetched = rows_fetched(engine, ex.author_page, MANY_BOOKS_AUTHOR)
        books = {b["id"]: b for b in SEED.rows["books"]}
        reviews = sum(
            1 for r in SEED.rows["reviews"] if books[r["book_id"]]["author_id"] == MANY_BOOKS_AUTHOR
        )
        assert reviews > 2 * 40 + 2  # what loading every review would fetch
        assert fetched <= 2 * 40 + 2, f"{fetched} rows fetched for an author with 40 books"

    def test_finds_the_books_through_an_index(self, indexed_engine: Engine) -> None:
        """After create_indexes, author_page looks the books up by author_id in an index."""
        ex.create_indexes(indexed_engine)
        # Author 1 has 2 of the 47 books: a lookup where an index pays off (for
        # author 2, 40 of 47, PostgreSQL rightly prefers reading every book).
        plans = report_plans(indexed_engine, ex.author_page, FEW_BOOKS_AUTHOR)
        assert any(searches_by(indexed_engine, p, "books", "author_id") for p in plans), shown(plans)
        assert not any(scans_whole_table(p, "books") for p in plans), shown(plans)

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_matches_reference_on_full_data_set(self, full_engine: Engine, full_rows: Rows) -> None:
        """On the whole data set, the page of the author with most books is right."""
        counts: dict[int, int] = defaultdict(int)
        for book in full_rows["books"]:
            counts[book["author_id"]] += 1
        busiest = max(counts, key=lambda a: (counts[a], -a))
        got = page_tuple(call(full_engine, ex.author_page, busiest))
        assert got == expected_page(reference_author_page(full_rows, busiest))

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_matches_reference_on_random_bookstores(
        self, random_bookstores: list[tuple[Engine, Seed]]
    ) -> None:
        """On random bookstores full of ties, every author's page is right."""
        for store, seed in random_bookstores:
            for author in seed.rows["authors"]:
                got = page_tuple(call(store, ex.author_page, author["id"]))
                assert got == expected_page(reference_author_page(seed.rows, author["id"]))


class TestCustomerHistory:
    """Task 4: a customer's orders with their lines, in a constant number of statements."""

    @pytest.mark.parametrize(
        "customer_id", [ONE_ORDER_CUSTOMER, FOUR_ORDERS_CUSTOMER, THIRTY_ORDERS_CUSTOMER]
    )
    def test_matches_reference(self, engine: Engine, customer_id: int) -> None:
        """Every order (id, time, status, total) and line (id, book, title, qty, price) is right."""
        got = history_tuples(call(engine, ex.customer_history, customer_id))
        assert got == reference_history(SEED.rows, customer_id)

    def test_newest_first_ties_by_id_descending(self, engine: Engine) -> None:
        """Orders run newest first; orders placed at the same instant: higher order_id first."""
        orders = call(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        keys = [(o.placed_at, o.order_id) for o in orders]
        assert keys == sorted(keys, reverse=True)
        assert len(keys) == 30

    def test_lines_by_line_id(self, engine: Engine) -> None:
        """Each order's lines come by line_id ascending (not by book, not as stored)."""
        orders = call(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        for o in orders:
            ids = [ln.line_id for ln in o.lines]
            assert ids == sorted(ids), f"order {o.order_id}: lines {ids}"

    def test_cancelled_orders_are_listed(self, engine: Engine) -> None:
        """A history shows cancelled orders too, with their status."""
        orders = call(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        seeded = [o for o in SEED.rows["orders"] if o["customer_id"] == THIRTY_ORDERS_CUSTOMER]
        expected = sorted(o["status"] for o in seeded)
        assert "cancelled" in expected
        assert sorted(o.status for o in orders) == expected

    def test_values_are_plain_python_types(self, engine: Engine) -> None:
        """Orders and lines are the report's dataclasses; money is an exact Decimal."""
        orders = call(engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        lines = [ln for o in orders for ln in o.lines]
        assert value_types(orders) == {"OrderSummary"}
        assert value_types(lines) == {"LineSummary"}
        assert value_types([o.total for o in orders]) == {"Decimal"}
        assert value_types([ln.unit_price for ln in lines]) == {"Decimal"}
        assert value_types([ln.title for ln in lines]) == {"str"}

    def test_customer_without_orders(self, engine: Engine) -> None:
        """A customer who never ordered has an empty history."""
        assert call(engine, ex.customer_history, NO_ORDERS_CUSTOMER) == []

    def test_same_number_of_statements_for_any_customer(self, engine: Engine) -> None:
        """customer_history sends the same number (at most 3) for 1, 4 or 30 orders."""
        counts = [
            statements_for(engine, ex.customer_history, c)
            for c in (ONE_ORDER_CUSTOMER, FOUR_ORDERS_CUSTOMER, THIRTY_ORDERS_CUSTOMER)
        ]
        assert counts == [counts[0]] * 3, f"1, 4, 30 orders: {counts} statements"
        assert counts[0] <= BUDGET, f"{counts[0]} statements (budget {BUDGET})"

    def test_reads_the_orders_from_an_index_in_order(self, indexed_engine: Engine) -> None:
        """After create_indexes, the history reads the orders from a customer_id index, already in order."""
        ex.create_indexes(indexed_engine)
        plans = report_plans(indexed_engine, ex.customer_history, THIRTY_ORDERS_CUSTOMER)
        on_orders = [p for p in plans if reads_table(p, "orders")]
        assert on_orders, shown(plans)
        assert all(searches_by(indexed_engine, p, "orders", "customer_id") for p in on_orders), shown(plans)
        assert not any(scans_whole_table(p, "orders") or sorts(p) for p in on_orders), shown(plans)

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_matches_reference_on_full_data_set(self, full_engine: Engine, full_rows: Rows) -> None:
        """On the whole data set, the history of the customer with most orders is right."""
        counts: dict[int, int] = defaultdict(int)
        for order in full_rows["orders"]:
            counts[order["customer_id"]] += 1
        busiest = max(counts, key=lambda c: (counts[c], -c))
        got = history_tuples(call(full_engine, ex.customer_history, busiest))
        assert got == reference_history(full_rows, busiest)

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_matches_reference_on_random_bookstores(
        self, random_bookstores: list[tuple[Engine, Seed]]
    ) -> None:
        """On random bookstores full of ties, every customer's history is right."""
        for store, seed in random_bookstores:
            for customer in seed.rows["customers"]:
                got = history_tuples(call(store, ex.customer_history, customer["id"]))
                assert got == reference_history(seed.rows, customer["id"])
