"""Warm-up with the bookstore data

Two small functions to practise the exercise workflow (edit, ``check``, repeat):

1. ``cheapest_titles``: plain Python over rows read from ``data/bookstore/books.csv``.
2. ``orders_per_status``: a report the database computes for you.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Engine

from coursekit.bookstore import Order  # noqa: F401  (the ORM model of the orders table)

__all__ = ["cheapest_titles", "orders_per_status"]


def cheapest_titles(books: Iterable[Mapping[str, str]], n: int) -> list[str]:
    """Titles of the ``n`` cheapest books, cheapest first; equal prices in title order.

    ``books`` are rows as ``csv.DictReader`` gives them, as a list or as any other
    iterable (a generator can be read only once). Every value is text, e.g.
    ``{"title": "Clock signal", "price": "21.99", ...}``, and prices are money: they
    compare as amounts ("9.99" is cheaper than "10.00", although as text it sorts
    after it).

    Returns at most ``n`` titles: all of them when ``n`` exceeds the number of
    books, ``[]`` for ``n == 0``. A negative ``n`` raises ``ValueError``.
    """
    raise NotImplementedError


def orders_per_status(engine: Engine) -> dict[str, int]:
    """How many orders (``Order``, table ``orders``) have each status, e.g.
    ``{"shipped": 15970, "paid": 2976, "cancelled": 1054}`` on the course data set.

    - Whatever the database holds: a status no order has is absent, an empty
      table gives ``{}``.
    - Budget: exactly one SQL statement, and the database does the counting
      (a ``GROUP BY``): the 20,000 order rows never travel to Python.
    - Resources: every connection taken from ``engine``'s pool is back in the pool
      when the function returns. A connection that is never closed stays checked
      out until the garbage collector happens to find it; a busy app runs out of
      connections long before that.
    """
    raise NotImplementedError
