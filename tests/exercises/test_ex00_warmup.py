"""Tests for ex00: the warm-up.

Task 2 runs on a small shop built here, with counts of its own (an answer
copied from the data set cannot pass) and nothing big to load, so it checks
quickly on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
from collections import Counter
from collections.abc import Iterator, Mapping
from decimal import Decimal
from functools import cache

import pytest
from sqlalchemy import Engine, delete, insert

from coursekit import db, paths
from coursekit.bookstore import Base, Customer, Order
from coursekit.impl import load
from coursekit.querycount import count_queries

ex = load("ex00_warmup")


@cache
def read_csv(name: str) -> tuple[dict[str, str], ...]:
    with (paths.DATASET_DIR / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


def reference_ranking(books: tuple[dict[str, str], ...]) -> list[str]:
    return [b["title"] for b in sorted(books, key=lambda b: (Decimal(b["price"]), b["title"]))]


class TestCheapestTitles:
    """Task 1: the cheapest books, in plain Python."""

    def test_prices_compare_as_numbers(self) -> None:
        """'9.99' is cheaper than '10.00' (as strings it would not be)."""
        books = [
            {"title": "B", "price": "10.00"},
            {"title": "A", "price": "9.99"},
            {"title": "C", "price": "100.00"},
        ]
        assert ex.cheapest_titles(books, 2) == ["A", "B"]

    def test_ties_are_broken_by_title(self) -> None:
        """Books with equal prices come in title order, whatever order they arrive in."""
        books = [{"title": t, "price": "5.00"} for t in ("Zeta", "Alpha", "Mid")]
        books.append({"title": "Cheap", "price": "4.99"})
        assert ex.cheapest_titles(books, 3) == ["Cheap", "Alpha", "Mid"]

    def test_on_the_whole_data_set(self) -> None:
        """All 2,000 books, read from a generator with an n above 2,000, come in the reference order."""
        books = read_csv("books")
        expected = reference_ranking(books)
        assert ex.cheapest_titles((book for book in books), 5000) == expected

    def test_edge_cases(self) -> None:
        """n=0 gives []; a negative n raises ValueError."""
        assert ex.cheapest_titles(list(read_csv("books")), 0) == []
        with pytest.raises(ValueError, match=r"."):
            ex.cheapest_titles([{"title": "A", "price": "1.00"}, {"title": "B", "price": "2.00"}], -1)


# A small shop of its own: no shipped order at all, counts unlike the data set's,
# and one customer behind every order.
SMALL_SHOP = {"paid": 2, "cancelled": 3}


@pytest.fixture(scope="module")
def small_shop() -> Iterator[Engine]:
    engine = db.fresh_engine("ex00_small")
    # Only the two tables the shop needs: less DDL, a faster start on PostgreSQL.
    Base.metadata.create_all(
        engine, tables=[Base.metadata.tables["customers"], Base.metadata.tables["orders"]]
    )
    yield engine
    engine.dispose()


def fill(engine: Engine, statuses: Mapping[str, int]) -> None:
    """Replace the shop's orders with ``statuses[s]`` orders of each status ``s``."""
    placed_at = dt.datetime(2024, 1, 1, 12, 0)
    with engine.begin() as connection:
        connection.execute(delete(Order))
        connection.execute(delete(Customer))
        customer = {"id": 1, "email": "a@example.com", "name": "A", "country": "GB"}
        connection.execute(insert(Customer), [{**customer, "joined_on": dt.date(2023, 1, 1)}])
        rows = [
            {"id": i, "customer_id": 1, "placed_at": placed_at, "status": status}
            for i, status in enumerate(Counter(statuses).elements(), start=1)
        ]
        if rows:
            connection.execute(insert(Order), rows)


def checked_out(engine: Engine) -> int:
    return engine.pool.checkedout()  # type: ignore[attr-defined,no-any-return]  # QueuePool


@pytest.mark.db
class TestOrdersPerStatus:
    """Task 2: counting in the database."""

    def test_counts_follow_the_data(self, small_shop: Engine) -> None:
        """The counts are the database's own: {} when there are no orders, no entry for a status no order has."""
        fill(small_shop, {})
        assert ex.orders_per_status(small_shop) == {}
        fill(small_shop, SMALL_SHOP)
        assert ex.orders_per_status(small_shop) == SMALL_SHOP

    def test_database_does_the_counting(self, small_shop: Engine) -> None:
        """Exactly one statement, a GROUP BY, is sent: the database counts, the rows never travel to Python."""
        fill(small_shop, SMALL_SHOP)
        with count_queries(small_shop) as queries:
            ex.orders_per_status(small_shop)
        assert queries.count == 1
        assert "GROUP BY" in queries.statements[0].upper()

    def test_connection_goes_back_to_the_pool(self, small_shop: Engine) -> None:
        """When the function returns, no connection is left checked out of the engine's pool."""
        fill(small_shop, SMALL_SHOP)
        # With the garbage collector paused, a forgotten connection cannot be
        # rescued behind the test's back: what is checked out stays visible.
        gc.disable()
        try:
            ex.orders_per_status(small_shop)
            left_out = checked_out(small_shop)
        finally:
            gc.enable()
        assert left_out == 0, f"{left_out} connection(s) still checked out: close what you open"
