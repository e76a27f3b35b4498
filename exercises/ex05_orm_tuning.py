"""Report queries within a query budget

Three read-only reports over the bookstore (``coursekit.bookstore``) that a
dashboard calls on every page view, and the indexes they need. What every
report must do:

- Return exactly the rows described in its docstring, as the dataclasses below
  (plain values, not ORM objects: nothing can lazy-load behind the caller's
  back once the session is gone). Averages are Python floats on every database.
- Send a small CONSTANT number of SQL statements: at most 3 per call, and the
  same number for an author with 2 books as for one with 40, for a customer with
  1 order as for one with 30, for the top 1 as for the top 30. A lazy load in a
  loop (N+1) that looks harmless with 2 rows is exactly what this rules out.
- Let the database count, sum and average. The tests re-run the statements a
  report sent and count the rows they return: loading every review or order
  line to add them up in Python fails even when the numbers are right.
- Keep their documented order whatever the plan, with or without indexes.
  Ties are everywhere (books share a year, orders share an instant, books sell
  as many copies as others), and a database returns rows that tie on every
  ORDER BY key in whatever order its plan produces. On SQLite that often looks
  like id order, which hides the problem until the plan changes.

Tasks (``check("ex05")`` shows which pass; ``hint("ex05")`` helps):

1. ``create_indexes(engine)``: the indexes the reports' lookups need.
2. ``bestsellers(session, limit)``: the best-selling books.
3. ``author_page(session, author_id)``: an author with review stats per book.
4. ``customer_history(session, customer_id)``: a customer's orders with lines.
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
    """Create the secondary indexes the reports' lookups need.

    The course schema deliberately has none on its foreign-key columns; the
    UNIQUE constraints on ``reviews (book_id, customer_id)`` and
    ``order_lines (order_id, book_id)`` already come with an index each.

    Afterwards, on SQLite (``EXPLAIN QUERY PLAN``) and on PostgreSQL (``EXPLAIN``):

    - "the books of author X" is an index lookup on ``author_id``, not a scan
      of the whole table;
    - "the orders of customer X, newest first (``placed_at`` descending, then
      ``id`` descending)" is an index lookup on ``customer_id`` that reads the
      orders already in that order: the plan has no sort step.

    Runs at every application start-up: calling it again must not fail, and it
    must work unchanged on SQLite and PostgreSQL.
    """
    raise NotImplementedError("Task 1: create_indexes")


def bestsellers(session: Session, limit: int = 10) -> list[BestsellerRow]:
    """The ``limit`` best-selling books, best first.

    - ``copies_sold``: the sum of ``OrderLine.quantity`` over lines whose order is
      not cancelled (status ``"paid"`` or ``"shipped"``). Books without such
      copies are not listed.
    - Order: ``copies_sold`` descending, then ``book_id`` ascending.
    - ``author_name``: the book's author. ``average_rating``: the mean of all the
      book's review ratings, ``None`` when it has none.
    - Budget: at most 3 statements whatever ``limit``; the database sends back
      about ``limit`` rows per statement, not every order line.
    - ``limit < 1`` raises ``ValueError``.

    Facts worth knowing: a book's order lines and its reviews are two
    independent one-to-many relations, and a join that brings both into one
    GROUP BY repeats each line once per review. PostgreSQL's ``avg()`` returns a
    ``Decimal``, SQLite's a float. PostgreSQL rejects a SELECT of columns that
    are neither grouped nor functionally dependent on the GROUP BY; SQLite
    accepts it.
    """
    raise NotImplementedError("Task 2: bestsellers")


def author_page(session: Session, author_id: int) -> AuthorPage | None:
    """The author with one ``BookStats`` per book, or ``None`` for an unknown author.

    - ``books``: every book of the author (an author without books gets ``[]``),
      ordered by ``published_year`` then ``book_id``, ascending.
    - ``review_count``: 0 for a book without reviews; ``average_rating``:
      ``None`` for it.
    - Budget: at most 3 statements, the same number for 2 books or 40; at most
      2 rows fetched per book (plus 2), so the reviews themselves are not loaded.
    - After ``create_indexes``, the books are found through an index on
      ``author_id``.

    Fact worth knowing: in an outer join, a book without reviews still yields
    one row, whose review columns are all NULL.
    """
    raise NotImplementedError("Task 3: author_page")


def customer_history(session: Session, customer_id: int) -> list[OrderSummary]:
    """All the customer's orders (cancelled ones too) with their lines; ``[]`` if none.

    - Orders newest first: ``placed_at`` descending, then ``order_id`` descending.
    - Each order's lines by ``line_id`` ascending, each with its book's title.
    - ``total``: the exact ``Decimal`` sum of ``quantity * unit_price`` over the
      order's lines.
    - Budget: at most 3 statements, the same number for 1 order or 30.
    - After ``create_indexes``, the orders are found through an index on
      ``customer_id`` that already holds them in the report's order (no sort
      step in the plan).

    Facts worth knowing: touching a relationship that was not loaded
    (``order.lines``, ``line.book``) lazy-loads it, one statement per object
    (unless the target already sits in the session's identity map). A
    collection loaded by a separate statement comes back in whatever order the
    database returns it.
    """
    raise NotImplementedError("Task 4: customer_history")
