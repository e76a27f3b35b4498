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
copies. The tests start 20 buyers at once, each in its own thread with its own
session, against 5 copies, and expect exactly 5 orders and a stock of 0, on
SQLite and on PostgreSQL. (A read-check-write ``if stock >= n: stock = stock - n``
loses updates under concurrency; ``SELECT ... FOR UPDATE`` does nothing on SQLite.)

Task 3 · ``get_order(order_id)`` and ``orders_for_customer(customer_id)`` return
plain ``PlacedOrder`` values (not ORM objects: they outlive the session), with
their lines, loading any number of orders in a constant number of queries.

Task 4 · the Alembic migration ``migrations/versions/rev0002_order_status.py``
takes the schema from revision ``0001`` (given, in
``coursekit/orders_schema/migrations/versions/``) to the models: it adds
``orders.status`` (VARCHAR(12), NOT NULL, existing rows become ``'placed'``)
with the CHECK constraint ``ck_orders_status_known`` and the index
``ix_orders_customer_id``; its ``downgrade()`` removes all three again. Both
directions keep every existing row, on SQLite (batch mode) and PostgreSQL.

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
from sqlalchemy import Engine, select, update  # noqa: F401  (select, update: you will need them)
from sqlalchemy.orm import (  # noqa: F401  (selectinload: you will need it)
    Session,
    selectinload,
    sessionmaker,
)

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

    Open one session per call (``self._session_factory()`` or, to get a session
    with a transaction that commits at the end of the block and rolls back if
    anything raises, ``with self._session_factory.begin() as session:``).
    The factory is made with ``expire_on_commit=False``.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def place_order(self, customer_id: int, lines: Mapping[int, int]) -> PlacedOrder:
        """Task 1 and 2: place one order atomically, never overselling.

        ``lines`` maps book_id -> quantity. Returns the stored order as a
        ``PlacedOrder`` (status ``"placed"``, lines sorted by book_id, each
        ``unit_price`` = the book's current price). Raises, changing NOTHING:

        - ``ValueError`` if ``lines`` is empty or any quantity is below 1;
        - ``UnknownBook(book_id)`` if a book does not exist;
        - ``OutOfStock(book_id, requested, available)`` if a book has fewer
          copies in stock than requested.

        TODO 1: validate ``lines`` before touching the database.
        TODO 2: in ONE transaction, take the stock for every line, so that
                concurrent buyers (each in its own thread and session) can never
                take the same copy twice. Reading the quantity, checking it in
                Python and writing ``quantity - n`` back loses updates (notebook
                04, section 6): use a fix from section 7 that works on SQLite AND
                PostgreSQL. (``SELECT ... FOR UPDATE`` locks rows on PostgreSQL
                but is silently ignored by SQLite.)
        TODO 3: take the rows in sorted book_id order, so that two concurrent
                multi-line orders cannot deadlock each other on PostgreSQL.
        TODO 4: if any line fails, raise: the transaction must roll back the
                stock already taken for earlier lines.
        TODO 5: store the Order with its OrderLines and return it as a
                PlacedOrder (``session.flush()`` assigns ``order.id``).
        """
        raise NotImplementedError("Task 1/2: place_order")

    def get_order(self, order_id: int) -> PlacedOrder | None:
        """Task 3: the order with its lines as a ``PlacedOrder``, or None if unknown.

        TODO 6: load the order and its lines (eagerly: the values must not need
                the session afterwards) and convert them to a PlacedOrder.
        """
        raise NotImplementedError("Task 3: get_order")

    def orders_for_customer(self, customer_id: int) -> list[PlacedOrder]:
        """Task 3: the customer's orders as PlacedOrders, lowest id first (may be empty).

        TODO 7: load them in a constant number of queries, whatever the number of
                orders: at most 2 (one for the orders, one for all their lines).
        """
        raise NotImplementedError("Task 3: orders_for_customer")
