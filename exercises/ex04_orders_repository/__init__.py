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

Check your work with ``check("ex04")`` in notebook 04 or ``python -m coursekit check 04``
(hints: ``python -m coursekit hint 04``). To try the migration by hand::

    from alembic import command
    from coursekit import db
    engine = db.fresh_engine("ex04_try")
    command.upgrade(alembic_config(engine), "head")    # then inspect, downgrade to "0001"
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

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
# Tasks 1-3: the repository (yours to write)
# ---------------------------------------------------------------------------


class OrderRepository:
    """Orders, placed and read through short sessions from ``session_factory``.

    Every call opens its own session and closes it before returning. The factory
    is made with ``expire_on_commit=False``. Several repositories (threads, or
    processes with their own engines) may work on the same database at once.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def place_order(self, customer_id: int, lines: Mapping[int, int]) -> PlacedOrder:
        """Task 1 and 2: place one order for several books, all or nothing, never overselling.

        ``lines`` maps book_id -> quantity. Returns the stored order as a
        ``PlacedOrder``: its new id, status ``"placed"``, one line per book sorted
        by book_id, each ``unit_price`` the book's price at the moment of the order.

        Raises, and then nothing has changed in the database (no stock taken for
        any line, no order, no order line):

        - ``ValueError`` if ``lines`` is empty or a quantity is below 1;
        - ``UnknownBook(book_id)`` if a book does not exist;
        - ``OutOfStock(book_id, requested, available)`` if a book has fewer
          copies in stock than requested (a book without a stock row has 0).

        Concurrency: buyers call this at the same time, from threads with their
        own sessions and from separate processes with their own engines. The
        copies sold never exceed the stock, stock never goes negative, and a
        buyer is refused only when the copies really are gone. Any other error
        (a deadlock, a constraint violation, "database is locked") is a bug.

        Facts of the world worth knowing: between reading a value and writing
        it back, another buyer can change it; SQLite has no ``SELECT ... FOR
        UPDATE`` (SQLAlchemy silently leaves the clause out there) and lets one
        writer at a time change the database; PostgreSQL locks rows, so two
        transactions that lock the same rows in different orders can deadlock;
        after a failed statement, PostgreSQL refuses every further statement in
        that transaction until it is rolled back.
        """
        raise NotImplementedError("Task 1/2: place_order")

    def get_order(self, order_id: int) -> PlacedOrder | None:
        """Task 3: the order with all its lines as a ``PlacedOrder``, or None if there is none.

        Lines come sorted by book_id, with the ``unit_price`` stored when the
        order was placed (a book's price may have changed since). The result
        is a plain value, usable after the session is closed.
        """
        raise NotImplementedError("Task 3: get_order")

    def orders_for_customer(self, customer_id: int) -> list[PlacedOrder]:
        """Task 3: the customer's orders as ``PlacedOrder`` values, each with its lines.

        Newest first: the latest ``placed_at`` first; orders with the same
        ``placed_at`` (SQLite's ``CURRENT_TIMESTAMP`` counts whole seconds) the
        higher id first. An empty list for a customer without orders.

        Budget: at most 2 queries, whatever the number of orders (loading each
        order's lines on first access costs one query per order).
        """
        raise NotImplementedError("Task 3: orders_for_customer")
