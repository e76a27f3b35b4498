"""The orders service's data access (Tasks 1, 3 and 5).

Contract:

- Every method runs in its own short transaction and returns the API's schemas
  (``OrderOut``, ``BookOut``) or a ``UserRow`` already loaded, never an object that
  would load more after its session has closed.
- ``place_order`` takes the stock of every line and stores the order (status
  ``placed``, ``unit_price`` and ``total`` from the catalog at that moment) all or
  nothing: ``UnknownBook`` or ``OutOfStock`` leave every row as it was. However many
  buyers race (tasks in one event loop, several server processes on one database;
  SQLite and PostgreSQL), the stock never goes below zero and no copy is lost:
  with 5 copies and 20 buyers, exactly 5 orders exist. Orders of several books
  race too, listing them in any order, and must not deadlock.
- ``change_status`` moves an order from ``expected`` to ``new`` and returns it, or
  returns None when the order is not (or no longer) in ``expected``: two concurrent
  calls never both succeed. Moving to ``cancelled`` puts the order's copies back in
  stock in the same transaction, exactly once.
- ``list_orders``: newest first (highest id first), at most ``limit``, only ids below
  ``before`` when given; one customer's orders, or everyone's for ``None``.
- ``list_books``: by id, at most ``limit``, only ids above ``after`` when given,
  with the copies in stock.
- Budgets: the statements a request may send are in the package docstring; a page
  of orders costs the same whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import BookOut, LineIn, OrderOut, UserRow

__all__ = ["Repository"]


class Repository:
    """Users, books, stock and orders, through sessions from ``sessions``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        raise NotImplementedError

    async def find_user(self, username: str) -> UserRow | None:
        """The user with this username, or None."""
        raise NotImplementedError

    async def list_books(self, *, after: int | None, limit: int) -> list[BookOut]:
        """Books by id, the first ``limit`` after id ``after``, with their stock."""
        raise NotImplementedError

    async def place_order(self, customer_id: int, lines: Sequence[LineIn]) -> OrderOut:
        """Take the stock of every line and store the order, all or nothing (status ``placed``)."""
        raise NotImplementedError

    async def change_status(self, order_id: int, expected: str, new: str) -> OrderOut | None:
        """Move the order from ``expected`` to ``new``; None when it is not in ``expected``."""
        raise NotImplementedError

    async def get_order(self, order_id: int) -> OrderOut | None:
        """The order with its lines, or None."""
        raise NotImplementedError

    async def list_orders(self, customer_id: int | None, *, before: int | None, limit: int) -> list[OrderOut]:
        """Newest first; one customer's orders, or everyone's when ``customer_id`` is None."""
        raise NotImplementedError
