"""Tests for ex00: the warm-up."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from coursekit import paths
from coursekit.dataset import bookstore_engine
from coursekit.impl import load
from coursekit.querycount import count_queries

ex = load("ex00_warmup")


def read_csv(name: str) -> list[dict[str, str]]:
    with (paths.DATASET_DIR / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


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
        """Books with equal prices come in title order."""
        books = [{"title": t, "price": "5.00"} for t in ("Zeta", "Alpha", "Mid")]
        assert ex.cheapest_titles(books, 3) == ["Alpha", "Mid", "Zeta"]

    def test_on_the_whole_data_set(self) -> None:
        """The 10 cheapest of the 2,000 books match a reference ranking."""
        books = read_csv("books")
        expected = [b["title"] for b in sorted(books, key=lambda b: (Decimal(b["price"]), b["title"]))]
        assert ex.cheapest_titles(books, 10) == expected[:10]
        assert ex.cheapest_titles(iter(books), 5000) == expected

    def test_edge_cases(self) -> None:
        """n=0 gives []; a negative n raises ValueError."""
        assert ex.cheapest_titles(read_csv("books"), 0) == []
        with pytest.raises(ValueError, match=r"."):
            ex.cheapest_titles([], -1)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = bookstore_engine("ex00")
    yield engine
    engine.dispose()


@pytest.mark.db
class TestOrdersPerStatus:
    """Task 2: counting in the database."""

    def test_counts_match_the_data_set(self, engine: Engine) -> None:
        """Each status count equals the number of such rows in orders.csv."""
        expected = Counter(row["status"] for row in read_csv("orders"))
        assert ex.orders_per_status(engine) == dict(expected)

    def test_database_does_the_counting(self, engine: Engine) -> None:
        """Exactly one statement, a GROUP BY, is sent (not 20,000 rows to count in Python)."""
        with count_queries(engine) as queries:
            ex.orders_per_status(engine)
        assert queries.count == 1
        assert "GROUP BY" in queries.statements[0].upper()
