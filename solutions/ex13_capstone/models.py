"""Given: the tables, the API's schemas, the errors and the roles.

The schemas are the written spec in code: the tests compare responses with them,
so they are given rather than designed. Money is ``Decimal`` in the database and
a string with two decimals ("12.50") in JSON, so no client ever rounds a float.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, MetaData, Numeric, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ORDER_STATUSES",
    "PROBLEM_JSON",
    "ROLES",
    "Base",
    "BookOut",
    "BookPage",
    "BookRow",
    "LineIn",
    "LineOut",
    "OrderIn",
    "OrderLineRow",
    "OrderOut",
    "OrderPage",
    "OrderRow",
    "OutOfStock",
    "PaymentDeclined",
    "PaymentUnavailable",
    "Principal",
    "Problem",
    "StockRow",
    "TokenOut",
    "UnknownBook",
    "UserRow",
]

ROLES: Final = ("customer", "staff")
ORDER_STATUSES: Final = ("placed", "paid", "shipped", "cancelled")
PROBLEM_JSON: Final = "application/problem+json"

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# ------------------------------------------------------------------------------------ tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('customer', 'staff')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10))


class BookRow(Base):
    __tablename__ = "books"
    __table_args__ = (CheckConstraint("price >= 0", name="price_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class StockRow(Base):
    __tablename__ = "stock"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), primary_key=True)
    quantity: Mapped[int]


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('placed', 'paid', 'shipped', 'cancelled')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="placed")
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    placed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    lines: Mapped[list[OrderLineRow]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLineRow.book_id"
    )


class OrderLineRow(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), primary_key=True)
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))

    order: Mapped[OrderRow] = relationship(back_populates="lines")


# ----------------------------------------------------------------------------------- schemas

Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2}$", "examples": ["12.50"]}),
]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    book_id: int = Field(ge=1, le=2_147_483_647)
    quantity: int = Field(ge=1, le=10)


class OrderIn(BaseModel):
    """What a customer may send: lines only (no customer_id, no status, no price)."""

    model_config = ConfigDict(extra="forbid")

    lines: list[LineIn] = Field(min_length=1, max_length=20)

    @field_validator("lines")
    @classmethod
    def one_line_per_book(cls, lines: list[LineIn]) -> list[LineIn]:
        if len({line.book_id for line in lines}) != len(lines):
            raise ValueError("each book may appear in one line only")
        return lines


class LineOut(BaseModel):
    book_id: int
    quantity: int
    unit_price: Money


class OrderOut(BaseModel):
    id: int
    customer_id: int
    status: Literal["placed", "paid", "shipped", "cancelled"]
    total: Money
    lines: list[LineOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class BookOut(BaseModel):
    id: int
    title: str
    price: Money
    in_stock: int


class BookPage(BaseModel):
    items: list[BookOut]
    next_cursor: str | None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str


class Principal(BaseModel):
    """Who a verified access token speaks for."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    role: Literal["customer", "staff"]


# ------------------------------------------------------------------------------------ errors


class OutOfStock(Exception):
    """Not enough copies of one book: the whole order was refused, nothing changed."""

    def __init__(self, book_id: int, requested: int, available: int) -> None:
        super().__init__(f"book {book_id}: requested {requested}, available {available}")
        self.book_id, self.requested, self.available = book_id, requested, available


class UnknownBook(LookupError):
    """The order names a book that does not exist: nothing changed."""

    def __init__(self, book_id: int) -> None:
        super().__init__(f"no book with id {book_id}")
        self.book_id = book_id


class PaymentDeclined(Exception):
    """The payment service refused the charge (a final answer: retrying cannot help)."""


class PaymentUnavailable(Exception):
    """No answer from the payment service in time, after retries, or the circuit is open."""
