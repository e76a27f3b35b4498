"""An orders repository that never oversells, plus one migration

The bookstore's order service keeps books, their stock, orders and order lines
in four tables. Customers live in another service, so ``orders.customer_id``
is a plain indexed integer. Given, and re-exported here (read them in
``coursekit/orders_schema/__init__.py``): the typed ORM models ``Book``,
``Stock``, ``Order`` and ``OrderLine``, the errors ``OutOfStock`` and
``UnknownBook``, and the result types ``PlacedOrder`` and ``PlacedLine``.

Task 1 · ``OrderRepository.place_order(customer_id, lines)`` places one order
for several books at once (``lines`` maps ``book_id`` to a quantity) in ONE
transaction: either every line gets its stock and the order is stored, or
nothing changes at all. A book without enough stock raises ``OutOfStock``; an
unknown book raises ``UnknownBook``; an empty order or a quantity below 1 raises
``ValueError``. ``unit_price`` is the book's price when the order is placed.

Task 2 · ``place_order`` never oversells, however many buyers race for the last
copies: buyers in threads of one process, each with its own session, and buyers
in separate processes (several web-server workers), each with its own engine.
With 5 copies and 20 buyers at once, exactly 5 orders succeed, 15 get
``OutOfStock`` and the stock ends at 0, on SQLite and on PostgreSQL. Orders for
several books race too, and must neither deadlock nor lose a copy.

Task 3 · ``get_order(order_id)`` and ``orders_for_customer(customer_id)`` return
plain ``PlacedOrder`` values (not ORM objects: they outlive the session), with
their lines, loading any number of orders in a constant number of queries;
a customer's orders come newest first (latest ``placed_at``; on a tie, the
higher id first).

Task 4 · the Alembic migration ``migrations/versions/rev0002_order_status.py``
takes the schema from revision ``0001`` (given, in
``coursekit/orders_schema/migrations/versions/``) to the models: it adds
``orders.status`` (VARCHAR(12), NOT NULL, existing rows become ``'placed'``)
with the CHECK constraint ``ck_orders_status_known`` and the index
``ix_orders_customer_id``; its ``downgrade()`` removes all three again. Both
directions keep every existing row, on SQLite (whose ALTER TABLE cannot add or
drop a constraint) and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from alembic.config import Config
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from coursekit.orders_schema import (
    ORDER_STATUSES,
    Base,
    Book,
    Order,
    OrderLine,
    OutOfStock,
    PlacedLine,
    PlacedOrder,
    Stock,
    UnknownBook,
    alembic_config_for,
)

__all__ = [
    "MIGRATIONS_DIR",
    "ORDER_STATUSES",
    "Base",
    "Book",
    "Order",
    "OrderLine",
    "OrderRepository",
    "OutOfStock",
    "PlacedLine",
    "PlacedOrder",
    "Stock",
    "UnknownBook",
    "alembic_config",
]

# ---------------------------------------------------------------------------
# Given: the schema (revision "0002" = head), errors and result types live in
# coursekit/orders_schema/__init__.py; here only this package's migrations.
# ---------------------------------------------------------------------------

# This package's migrations: versions/ holds revision 0002 (env.py and revision
# 0001 are shared, in coursekit/orders_schema/migrations/).
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that migrates ``engine``: 0001 (given), then MIGRATIONS_DIR.

    Use it with ``alembic.command``: ``command.upgrade(alembic_config(engine), "head")``.
    """
    return alembic_config_for(engine, MIGRATIONS_DIR / "versions")


# ---------------------------------------------------------------------------
# Tasks 1-3: the repository
# ---------------------------------------------------------------------------


class OrderRepository:
    """Orders, placed and read through short sessions from ``session_factory``."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def place_order(self, customer_id: int, lines: Mapping[int, int]) -> PlacedOrder:
        """Place one order atomically; raise OutOfStock / UnknownBook / ValueError."""
        wanted = _validated(lines)
        # begin(): commit when the block ends, roll back if anything raises, so
        # a later line that fails undoes the stock already taken for earlier ones.
        with self._session_factory.begin() as session:
            # Sorted by book_id: concurrent multi-line orders lock stock rows in the
            # same order, so two of them can never wait for each other (deadlock).
            for book_id, quantity in wanted:
                # Check and decrement in ONE statement: the database evaluates the
                # WHERE on the current row under its write lock, so no other buyer
                # can slip in between the check and the write.
                taken = (
                    session.connection()
                    .execute(
                        update(Stock)
                        .where(Stock.book_id == book_id, Stock.quantity >= quantity)
                        .values(quantity=Stock.quantity - quantity)
                    )
                    .rowcount
                )
                if taken != 1:
                    raise _refusal(session, book_id, quantity)
            book_ids = [book_id for book_id, _ in wanted]
            prices = dict(
                session.execute(select(Book.id, Book.price).where(Book.id.in_(book_ids))).all()
            )
            order = Order(
                customer_id=customer_id,
                lines=[
                    OrderLine(book_id=book_id, quantity=quantity, unit_price=prices[book_id])
                    for book_id, quantity in wanted
                ],
            )
            session.add(order)
            session.flush()  # sends the INSERTs now, so order.id is known
            return _placed(order)

    def get_order(self, order_id: int) -> PlacedOrder | None:
        """The order with its lines, or None if there is no such order."""
        with self._session_factory() as session:
            order = session.scalars(
                select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
            ).one_or_none()
            return None if order is None else _placed(order)

    def orders_for_customer(self, customer_id: int) -> list[PlacedOrder]:
        """The customer's orders, newest first, each with its lines."""
        with self._session_factory() as session:
            # selectinload: one query for the orders, one for all their lines,
            # however many orders there are (lazy loading would be 1 + N).
            orders = session.scalars(
                select(Order)
                .where(Order.customer_id == customer_id)
                # Without ORDER BY, rows come back in whatever order the database
                # finds them. Timestamps tie (SQLite's CURRENT_TIMESTAMP counts
                # whole seconds), so the id decides between equal ones.
                .order_by(Order.placed_at.desc(), Order.id.desc())
                .options(selectinload(Order.lines))
            )
            return [_placed(order) for order in orders]


def _validated(lines: Mapping[int, int]) -> list[tuple[int, int]]:
    if not lines:
        raise ValueError("an order needs at least one line")
    for book_id, quantity in lines.items():
        if quantity < 1:
            raise ValueError(f"quantity for book {book_id} must be at least 1, got {quantity}")
    return sorted(lines.items())


def _refusal(session: Session, book_id: int, requested: int) -> Exception:
    """Why the conditional UPDATE matched no row: unknown book, or too few copies."""
    available = session.scalar(select(Stock.quantity).where(Stock.book_id == book_id))
    if available is None and session.get(Book, book_id) is None:
        return UnknownBook(book_id)
    return OutOfStock(book_id, requested, available or 0)


def _placed(order: Order) -> PlacedOrder:
    return PlacedOrder(
        id=order.id,
        customer_id=order.customer_id,
        status=order.status,
        lines=tuple(
            PlacedLine(line.book_id, line.quantity, line.unit_price)
            for line in sorted(order.lines, key=lambda line: line.book_id)
        ),
    )
