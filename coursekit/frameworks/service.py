"""The bookstore service's data layer in SQLAlchemy, shared by the FastAPI and Flask apps.

Neither function knows about HTTP: a framework's view parses the request,
calls one of them, and turns the result (or the error) into a response. That
split is what makes a service portable between frameworks: only the thin HTTP
layer changes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker

from coursekit.bookstore import Book, Customer, Order, OrderLine, Review, Stock

MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 20


class PageQuery(BaseModel):
    """``?page=&size=`` of the catalog: validated, never silently defaulted."""

    model_config = ConfigDict(extra="ignore")
    page: int = Field(default=1, ge=1)
    size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class OrderIn(BaseModel):
    """The body of ``POST /orders``: one line of one book."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int
    book_id: int
    quantity: int = Field(ge=1)


class AuthorOut(BaseModel):
    id: int
    name: str


class BookOut(BaseModel):
    id: int
    title: str
    price: Decimal  # serialised as a string ("12.50"): money is never a float
    author: AuthorOut
    review_count: int


class PageOut(BaseModel):
    page: int
    size: int
    items: list[BookOut]


class OrderOut(BaseModel):
    id: int
    customer_id: int
    book_id: int
    quantity: int
    unit_price: Decimal
    status: str


class ServiceError(Exception):
    status: int = 500
    title: str = "Internal Server Error"


class NotFound(ServiceError):
    status, title = 404, "Not Found"


class OutOfStock(ServiceError):
    status, title = 409, "Conflict"


def catalog_page(session: Session, query: PageQuery) -> PageOut:
    """Books of one page in id order, each with its author and review count: ONE statement."""
    review_count = (
        select(func.count(Review.id)).where(Review.book_id == Book.id).correlate(Book).scalar_subquery()
    )
    rows = session.execute(
        select(Book, review_count)
        .options(joinedload(Book.author))  # the author comes in the same SELECT (a JOIN)
        .order_by(Book.id)
        .limit(query.size)
        .offset((query.page - 1) * query.size)
    ).all()
    items = [
        BookOut(
            id=book.id,
            title=book.title,
            price=book.price,
            author=AuthorOut(id=book.author.id, name=book.author.name),
            review_count=count,
        )
        for book, count in rows
    ]
    return PageOut(page=query.page, size=query.size, items=items)


def place_order(sessions: sessionmaker[Session], order: OrderIn) -> OrderOut:
    """Take the copies and store the order in one transaction; never oversell."""
    with sessions.begin() as session:
        if session.get(Customer, order.customer_id) is None:
            raise NotFound(f"customer {order.customer_id} does not exist")
        # Check and decrement in ONE statement: the database evaluates the WHERE on
        # the current row under its write lock, so no other buyer slips in between.
        taken = (
            session.connection()
            .execute(
                update(Stock)
                .where(Stock.book_id == order.book_id, Stock.quantity >= order.quantity)
                .values(quantity=Stock.quantity - order.quantity)
            )
            .rowcount
        )
        book = session.get(Book, order.book_id)
        if book is None:
            raise NotFound(f"book {order.book_id} does not exist")
        if taken != 1:
            available = session.scalar(select(Stock.quantity).where(Stock.book_id == order.book_id)) or 0
            raise OutOfStock(f"book {order.book_id}: {order.quantity} wanted, {available} in stock")
        placed = Order(customer_id=order.customer_id, placed_at=_now(), status="paid")
        placed.lines = [OrderLine(book_id=book.id, quantity=order.quantity, unit_price=book.price)]
        session.add(placed)
        session.flush()  # the INSERTs run now, so placed.id is known
        return OrderOut(
            id=placed.id,
            customer_id=order.customer_id,
            book_id=book.id,
            quantity=order.quantity,
            unit_price=book.price,
            status=placed.status,
        )


def problem_body(status: int, title: str, detail: str) -> dict[str, Any]:
    """RFC 9457 problem details: the one error shape of the three apps."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def validation_detail(errors: list[Any]) -> str:
    """Pydantic's errors in one line: ``quantity: Input should be greater than or equal to 1``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}" for error in errors
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # naive UTC, like the data set
