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

The tasks:

1. ``create_indexes(engine)``: the indexes the reports' lookups need.
2. ``bestsellers(session, limit)``: the best-selling books.
3. ``author_page(session, author_id)``: an author with review stats per book.
4. ``customer_history(session, customer_id)``: a customer's orders with lines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine, desc, func, select
from sqlalchemy.orm import Session, selectinload

from coursekit.bookstore import Author, Book, Order, OrderLine, Review

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


# The lookups the reports make, as plain DDL. Building sqlalchemy ``Index``
# objects on the shared models would attach them to ``Base.metadata`` as a side
# effect of importing this module; explicit statements keep that visible.
# ``IF NOT EXISTS`` makes the function safe to run at every start-up.
_INDEXES = (
    # author_page: "the books of author X".
    "CREATE INDEX IF NOT EXISTS ix_books_author_id ON books (author_id)",
    # customer_history: "the orders of customer X, newest first". With the sort
    # columns after customer_id, the database reads the entries backwards,
    # already in the report's order, instead of sorting them.
    "CREATE INDEX IF NOT EXISTS ix_orders_customer_placed"
    " ON orders (customer_id, placed_at, id)",
)
# Not needed: reviews (book_id, ...) and order_lines (order_id, ...) already have
# an index that starts with the column, created for their UNIQUE constraints.


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
    with engine.begin() as connection:
        for ddl in _INDEXES:
            connection.exec_driver_sql(ddl)


def _average(value: float | Decimal | None) -> float | None:
    # SQLite's avg() returns a float, PostgreSQL's a Decimal (numeric).
    return None if value is None else float(value)


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
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    copies_sold = func.sum(OrderLine.quantity).label("copies_sold")
    # Rank in SQL and keep only the top rows: the database reads the order lines,
    # Python receives `limit` rows. book_id breaks ties, so the cut at `limit`
    # and the order are the same on every database and every plan.
    top = (
        select(OrderLine.book_id, copies_sold)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status != "cancelled")
        .group_by(OrderLine.book_id)
        .order_by(desc(copies_sold), OrderLine.book_id)
        .limit(limit)
        .subquery()
    )
    # A correlated subquery, not a join: joining reviews next to order lines
    # would repeat every line once per review and multiply the copies sold.
    average_rating = (
        select(func.avg(Review.rating)).where(Review.book_id == top.c.book_id).scalar_subquery()
    )
    rows = session.execute(
        select(top.c.book_id, Book.title, Author.name, top.c.copies_sold, average_rating)
        .join(Book, Book.id == top.c.book_id)
        .join(Author, Author.id == Book.author_id)
        .order_by(top.c.copies_sold.desc(), top.c.book_id)
    )
    return [
        BestsellerRow(book_id, title, author_name, int(copies), _average(rating))
        for book_id, title, author_name, copies, rating in rows
    ]


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
    author = session.get(Author, author_id)  # statement 1 (by primary key)
    if author is None:
        return None
    # Statement 2: one row per book, counted and averaged by the database. The
    # outer join keeps books without reviews (count 0, average NULL).
    stats = session.execute(
        select(
            Book.id,
            Book.title,
            Book.published_year,
            func.count(Review.id),
            func.avg(Review.rating),
        )
        .outerjoin(Review, Review.book_id == Book.id)
        .where(Book.author_id == author_id)
        .group_by(Book.id, Book.title, Book.published_year)
        .order_by(Book.published_year, Book.id)
    )
    books = [
        BookStats(book_id, title, year, count, _average(rating))
        for book_id, title, year, count, rating in stats
    ]
    return AuthorPage(author.id, author.name, author.country, books)


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
    orders = session.scalars(
        select(Order)
        .where(Order.customer_id == customer_id)
        # The id breaks ties between orders placed at the same instant: without
        # it, tied rows come back in whatever order the plan produces.
        .order_by(Order.placed_at.desc(), Order.id.desc())
        # Statement 2 loads the lines of all these orders at once (WHERE order_id
        # IN ...) and joins each line's book in the same statement, fetching
        # only the title: 2 statements whatever the number of orders.
        .options(selectinload(Order.lines).joinedload(OrderLine.book).load_only(Book.title))
    ).all()
    return [_summary(order) for order in orders]


def _summary(order: Order) -> OrderSummary:
    lines = [
        LineSummary(line.id, line.book_id, line.book.title, line.quantity, line.unit_price)
        for line in sorted(order.lines, key=lambda line: line.id)
    ]
    total = sum((line.quantity * line.unit_price for line in lines), Decimal("0.00"))
    return OrderSummary(order.id, order.placed_at, order.status, total, lines)
