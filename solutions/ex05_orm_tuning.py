"""Report queries within a query budget

Three read-only reports over the bookstore (``coursekit.bookstore``) that a
dashboard calls on every page view. Each must return the right rows, send a
small constant number of statements (at most 3, the same for 2 rows or 2,000),
let the database do the counting and averaging, and find its rows through an
index rather than by reading the whole table.

1. ``create_indexes(engine)``: add the secondary indexes the reports need
   (the course schema has none on its foreign-key columns). Idempotent.
2. ``bestsellers(session, limit)``: the best-selling books.
3. ``author_page(session, author_id)``: an author with review stats per book.
4. ``customer_history(session, customer_id)``: a customer's orders with their lines.

The dataclasses below are the reports' shapes: return them, not ORM objects, so
nothing can lazy-load behind the caller's back after the session is gone.
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
    """Create the indexes the reports' main lookups need (idempotent)."""
    with engine.begin() as connection:
        for ddl in _INDEXES:
            connection.exec_driver_sql(ddl)


def _average(value: float | Decimal | None) -> float | None:
    # SQLite's avg() returns a float, PostgreSQL's a Decimal (numeric).
    return None if value is None else float(value)


def bestsellers(session: Session, limit: int = 10) -> list[BestsellerRow]:
    """The ``limit`` best-selling books: copies sold descending, then book_id ascending."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    copies_sold = func.sum(OrderLine.quantity).label("copies_sold")
    # Rank in SQL and keep only the top rows: the database reads the order lines,
    # Python receives `limit` rows.
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
    """The author with per-book review stats, or ``None`` if there is no such author."""
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
    """All the customer's orders (cancelled ones too), newest first, with their lines."""
    orders = session.scalars(
        select(Order)
        .where(Order.customer_id == customer_id)
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
