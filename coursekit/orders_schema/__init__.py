"""The given part of exercise 04 (an orders repository): schema, errors, results, Alembic

The typed ORM models (revision "0002" = head), the errors and result types that
``OrderRepository`` raises and returns, and the Alembic configuration. Both
``exercises/ex04_orders_repository`` (the stub) and ``solutions/ex04_orders_repository``
(the reference) re-export these names, so the two share one definition.

Migrations: this package's ``migrations/`` holds the Alembic environment (``env.py``,
``script.py.mako``) and the given revision ``0001`` (``versions/rev0001_create_schema.py``);
each ex04 package keeps its own revision ``0002`` in its ``migrations/versions/``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from alembic.config import Config
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    ForeignKey,
    MetaData,
    Numeric,
    String,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "MIGRATIONS_DIR",
    "NAMING_CONVENTION",
    "ORDER_STATUSES",
    "Base",
    "Book",
    "Order",
    "OrderLine",
    "OutOfStock",
    "PlacedLine",
    "PlacedOrder",
    "Stock",
    "UnknownBook",
    "alembic_config_for",
]

# Every constraint and index gets a predictable name, so a migration can drop
# it later by name (SQLite batch mode even needs the name to find it).
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ORDER_STATUSES: Final = ("placed", "paid", "shipped", "cancelled")
# The shared Alembic script location: env.py, script.py.mako, versions/ (revision 0001).
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (CheckConstraint("price >= 0", name="price_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    isbn: Mapped[str] = mapped_column(String(13), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class Stock(Base):
    __tablename__ = "stock"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), primary_key=True)
    quantity: Mapped[int]


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('placed', 'paid', 'shipped', 'cancelled')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(index=True)
    placed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(String(12), default="placed", server_default="placed")

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.book_id"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), primary_key=True, index=True)
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))

    order: Mapped[Order] = relationship(back_populates="lines")


class OutOfStock(Exception):
    """Not enough copies of one book: the whole order was rejected."""

    def __init__(self, book_id: int, requested: int, available: int) -> None:
        super().__init__(f"book {book_id}: requested {requested}, available {available}")
        self.book_id = book_id
        self.requested = requested
        self.available = available


class UnknownBook(LookupError):
    """The order names a book that does not exist: the whole order was rejected."""

    def __init__(self, book_id: int) -> None:
        super().__init__(f"no book with id {book_id}")
        self.book_id = book_id


@dataclass(frozen=True)
class PlacedLine:
    book_id: int
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class PlacedOrder:
    id: int
    customer_id: int
    status: str
    lines: tuple[PlacedLine, ...]  # sorted by book_id

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))


def alembic_config_for(engine: Engine, versions_dir: Path) -> Config:
    """An Alembic configuration that migrates ``engine``: revision 0001, then ``versions_dir``.

    ``versions_dir`` is an ex04 package's own ``migrations/versions`` (revision 0002).
    The environment (``env.py``) and revision 0001 come from ``MIGRATIONS_DIR``.
    """
    config = Config()
    config.set_main_option("script_location", _ini_value(MIGRATIONS_DIR))
    # Two folders of revisions; Alembic reads them as one history (0001 -> 0002).
    # One path per line, so a path with spaces or colons stays one path.
    config.set_main_option("path_separator", "newline")
    config.set_main_option(
        "version_locations",
        "\n".join(_ini_value(path) for path in (MIGRATIONS_DIR / "versions", versions_dir)),
    )
    config.attributes["engine"] = engine  # migrations/env.py takes it from here
    config.attributes["target_metadata"] = Base.metadata  # for --autogenerate
    return config


def _ini_value(path: Path) -> str:
    # Config options go through configparser interpolation: a literal % must be %%.
    return str(path.resolve()).replace("%", "%%")
