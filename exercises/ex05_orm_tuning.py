"""Report queries within a query budget

Three read-only reports over the bookstore (``coursekit.bookstore``) that a
dashboard calls on every page view. Each must

- return exactly the rows described below (the tests compare them with a
  straightforward reference computed in Python);
- send a small CONSTANT number of SQL statements: at most 3, and the same number
  for an author with 2 books as for one with 40, for a customer with 1 order as
  for one with 30, for the top 3 as for the top 30 (no N+1);
- let the database count, sum and average (``func.count``, ``func.sum``,
  ``func.avg``, ``group_by``): the tests re-run your statements and count the
  rows they return, so loading every review or order line and aggregating in
  Python fails even when the numbers are right;
- find its main rows through an index: after ``create_indexes(engine)``, the plan
  of your statements must SEARCH books by author_id and orders by customer_id
  USING INDEX (SQLite ``EXPLAIN QUERY PLAN``; an index scan on PostgreSQL).

Tasks (``check("ex05")`` shows which pass; ``hint("ex05")`` helps):

1. ``create_indexes(engine)``: add the secondary indexes the reports need (the
   course schema has none on its foreign-key columns on purpose). Calling it
   twice must not fail.
2. ``bestsellers(session, limit)``: the best-selling books.
3. ``author_page(session, author_id)``: an author with review stats per book.
4. ``customer_history(session, customer_id)``: a customer's orders with lines.

Use the SQLAlchemy 2.x style (``select()``, ``session.execute``/``scalars``,
loader options such as ``selectinload``); the dataclasses below are the shapes
to return. Return them, not ORM objects, so nothing can lazy-load behind the
caller's back once the session is gone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

__all__ = [
    "AuthorPage",
    "BestsellerRow",
    "BookStats",
    "LineSummary",
    "OrderSummary",
    "author_page",
    "bestsellers",
    "create_indexes",
    "customer_history",
]


@dataclass(frozen=True, slots=True)
class BestsellerRow:
    book_id: int
    title: str
    author_name: str
    copies_sold: int  # sum of quantities over lines of orders that are not cancelled
    average_rating: float | None  # over all the book's reviews; None without reviews


@dataclass(frozen=True, slots=True)
class BookStats:
    book_id: int
    title: str
    published_year: int
    review_count: int
    average_rating: float | None  # None when the book has no reviews


@dataclass(frozen=True, slots=True)
class AuthorPage:
    author_id: int
    name: str
    country: str
    books: list[BookStats]  # oldest first: published_year, then book_id, ascending


@dataclass(frozen=True, slots=True)
class LineSummary:
    line_id: int
    book_id: int
    title: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class OrderSummary:
    order_id: int
    placed_at: dt.datetime
    status: str
    total: Decimal  # sum of quantity * unit_price over the lines
    lines: list[LineSummary]  # line_id ascending


def create_indexes(engine: Engine) -> None:
    """Create the indexes the reports' main lookups need (idempotent).

    TODO 1a. Find the reports' main lookups: "books WHERE author_id = ?" and
        "orders WHERE customer_id = ? ORDER BY placed_at DESC". Which columns
        have no index yet? (``reviews`` and ``order_lines`` already have one that
        starts with ``book_id`` / ``order_id``: their UNIQUE constraints.)
    TODO 1b. Create them with ``CREATE INDEX IF NOT EXISTS <name> ON <table> (...)``
        in one transaction (``with engine.begin() as connection:``), so a second
        call is harmless. Plain DDL works the same on SQLite and PostgreSQL.
    """
    raise NotImplementedError("TODO 1: create the indexes")


def bestsellers(session: Session, limit: int = 10) -> list[BestsellerRow]:
    """The ``limit`` best-selling books, best first.

    - ``copies_sold``: the sum of ``OrderLine.quantity`` over lines whose order is
      not cancelled (status ``"paid"`` or ``"shipped"``). Books with no such
      copies are not listed.
    - Order: ``copies_sold`` descending, then ``book_id`` ascending (ties).
    - ``author_name``: the book's author; ``average_rating``: the mean of ALL the
      book's review ratings as a float, ``None`` when it has no reviews.
    - ``limit < 1`` raises ``ValueError``.

    TODO 2a. Sum, filter, group, order and LIMIT in SQL: the database should send
        back ``limit`` rows, not every order line.
    TODO 2b. Add title, author name and average rating without N+1 (a join, a
        correlated subquery, or one extra statement for all rows at once). Beware:
        joining reviews and order lines in the same GROUP BY multiplies the copies.
    TODO 2c. PostgreSQL's ``avg`` returns a ``Decimal``, SQLite's a float: convert.
    """
    raise NotImplementedError("TODO 2: bestsellers")


def author_page(session: Session, author_id: int) -> AuthorPage | None:
    """The author with one ``BookStats`` per book, or ``None`` for an unknown author.

    - ``books``: every book of the author (an author without books gets ``[]``),
      ordered by ``published_year`` then ``book_id``, ascending.
    - ``review_count`` (0 without reviews) and ``average_rating`` (``None``
      without reviews) computed by the database, not by loading the reviews.

    TODO 3a. Load the author by primary key (``session.get``).
    TODO 3b. One statement for all the books' stats: books LEFT OUTER JOIN
        reviews, ``func.count`` / ``func.avg``, ``group_by``, ``order_by``.
    """
    raise NotImplementedError("TODO 3: author_page")


def customer_history(session: Session, customer_id: int) -> list[OrderSummary]:
    """All the customer's orders (cancelled ones too) with their lines; ``[]`` if none.

    - Orders newest first: ``placed_at`` descending, then ``order_id`` descending.
    - Lines by ``line_id`` ascending, each with its book's title.
    - ``total``: sum of ``quantity * unit_price`` over the order's lines (exact Decimal).

    TODO 4a. Select the orders with an ORDER BY that matches the spec.
    TODO 4b. Load all their lines and the books' titles with loader options
        (``selectinload(Order.lines).joinedload(OrderLine.book)``) instead of
        touching ``order.lines`` / ``line.book`` lazily in a loop.
    TODO 4c. Build the dataclasses inside the function, while the session is open.
    """
    raise NotImplementedError("TODO 4: customer_history")
