"""Warm-up with the bookstore data

Two small functions to practise the exercise workflow (edit, ``check``, repeat):

1. ``cheapest_titles``: plain Python over rows read from ``data/bookstore/books.csv``.
2. ``orders_per_status``: a report the database computes for you.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sqlalchemy import Engine, func, select

from coursekit.bookstore import Order

__all__ = ["cheapest_titles", "orders_per_status"]


def cheapest_titles(books: Iterable[Mapping[str, str]], n: int) -> list[str]:
    """Titles of the ``n`` cheapest books, cheapest first; equal prices in title order."""
    if n < 0:
        raise ValueError(f"n must be 0 or more, not {n}")
    # Prices arrive as text: compare them as Decimals, since "10.00" < "9.99" as strings.
    # sorted() reads the iterable once, so a generator works as well as a list.
    ranked = sorted(books, key=lambda book: (Decimal(book["price"]), book["title"]))
    return [book["title"] for book in ranked[:n]]


def orders_per_status(engine: Engine) -> dict[str, int]:
    """How many orders have each status, counted by the database in one query."""
    query = select(Order.status, func.count()).group_by(Order.status)
    # The with-block returns the connection to the pool, even if the query fails.
    with engine.connect() as connection:
        return {status: count for status, count in connection.execute(query)}
