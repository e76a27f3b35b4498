"""The bookstore data set: reproducible, big enough, and loadable on both databases."""

from __future__ import annotations

import filecmp
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, func, select

from coursekit import db, paths
from coursekit.bookstore import Book, Order, OrderLine, Review, Stock
from coursekit.dataset import TABLE_ORDER, csv_row_counts, load_bookstore, row_counts

MINIMUM_ROWS = {"authors": 200, "books": 2_000, "customers": 5_000, "orders": 20_000, "reviews": 30_000}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", paths.DATA_DIR / "generate.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    """Running data/generate.py again gives byte-identical CSV files (fixed seed)."""
    counts = generator().generate(tmp_path)
    for name in TABLE_ORDER:
        assert filecmp.cmp(tmp_path / f"{name}.csv", paths.DATASET_DIR / f"{name}.csv", shallow=False), name
    assert counts == csv_row_counts()


def test_data_set_is_large_enough_for_performance_lessons() -> None:
    """At least 200 authors, 2,000 books, 5,000 customers, 20,000 orders, 30,000 reviews."""
    counts = csv_row_counts()
    for table, minimum in MINIMUM_ROWS.items():
        assert counts[table] >= minimum, table


@pytest.fixture(scope="module")
def loaded() -> Iterator[Engine]:
    engine = db.fresh_engine("test_dataset")
    load_bookstore(engine)
    yield engine
    engine.dispose()
    db.reset_database("test_dataset")


@pytest.mark.db
class TestLoader:
    def test_every_row_is_loaded(self, loaded: Engine) -> None:
        """Row counts in the database equal the CSV files."""
        assert row_counts(loaded) == csv_row_counts()

    def test_values_keep_their_types(self, loaded: Engine) -> None:
        """Prices stay exact Decimals and sums match the CSV text."""
        with loaded.connect() as connection:
            revenue = connection.scalar(select(func.sum(OrderLine.unit_price * OrderLine.quantity)))
            first = connection.execute(select(Book.price).where(Book.id == 1)).scalar_one()
        assert str(first) == "21.99"
        assert revenue is not None
        assert revenue.as_tuple().exponent == -2

    def test_skew_makes_bestsellers(self, loaded: Engine) -> None:
        """Popularity is skewed: the top 1% of books take far more than 1% of reviews and sales."""
        with loaded.connect() as connection:
            per_book = sorted(
                connection.execute(
                    select(func.count()).select_from(Review).group_by(Review.book_id)
                ).scalars(),
                reverse=True,
            )
            statuses = set(connection.execute(select(Order.status).distinct()).scalars())
            negative = connection.scalar(select(func.count()).where(Stock.quantity < 0))
        top = sum(per_book[: len(per_book) // 100])
        assert top / sum(per_book) > 0.1
        assert statuses == {"paid", "shipped", "cancelled"}
        assert negative == 0
