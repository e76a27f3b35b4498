"""Warm-up with the bookstore data

Two small functions to practise the exercise workflow (edit, ``check``, repeat):

1. ``cheapest_titles``: plain Python over rows read from ``data/bookstore/books.csv``.
2. ``orders_per_status``: let the database count, with one ``GROUP BY`` query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Engine

from coursekit.bookstore import Order  # noqa: F401  (you will need it in task 2)

__all__ = ["cheapest_titles", "orders_per_status"]


def cheapest_titles(books: Iterable[Mapping[str, str]], n: int) -> list[str]:
    """Titles of the ``n`` cheapest books, cheapest first, equal prices by title.

    TODO 1. ``books`` are rows as ``csv.DictReader`` gives them: every value is a
    string, e.g. ``{"title": "Clock signal", "price": "21.99", ...}``. Compare prices
    as numbers (as strings, "10.00" sorts before "9.99") and exactly (``Decimal``).
    ``n`` larger than the number of books returns them all; a negative ``n``
    raises ``ValueError``.
    """
    raise NotImplementedError("TODO 1")


def orders_per_status(engine: Engine) -> dict[str, int]:
    """Number of orders per status, e.g. ``{"shipped": 16012, "paid": 2985, ...}``.

    TODO 2. Let the database count: exactly one SELECT ... GROUP BY, not a loop
    over 20,000 rows in Python. With SQLAlchemy 2.x:
    ``select(Order.status, func.count()).group_by(Order.status)``, run on
    ``engine.connect()``; each result row unpacks as ``status, count``.
    """
    raise NotImplementedError("TODO 2")
