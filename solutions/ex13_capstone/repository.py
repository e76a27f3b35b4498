"""The orders service's data access: one short transaction per call, plain results out.

Every method returns the API's schemas (``OrderOut``, ``BookOut``), never ORM
objects, so nothing lazy-loads after its session has closed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from .models import (
    BookOut,
    BookRow,
    LineIn,
    LineOut,
    OrderLineRow,
    OrderOut,
    OrderRow,
    OutOfStock,
    StockRow,
    UnknownBook,
    UserRow,
)

__all__ = ["Repository"]


class Repository:
    """Users, books, stock and orders, through sessions from ``sessions``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def find_user(self, username: str) -> UserRow | None:
        async with self._sessions() as session:
            return await session.scalar(select(UserRow).where(UserRow.username == username))

    async def list_books(self, *, after: int | None, limit: int) -> list[BookOut]:
        """Books by id, the first ``limit`` after id ``after``, with their stock: one query."""
        query = (
            select(BookRow.id, BookRow.title, BookRow.price, StockRow.quantity)
            .join(StockRow, StockRow.book_id == BookRow.id)
            .order_by(BookRow.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(BookRow.id > after)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [BookOut(id=row.id, title=row.title, price=row.price, in_stock=row.quantity) for row in rows]

    async def place_order(self, customer_id: int, lines: Sequence[LineIn]) -> OrderOut:
        """Take the stock of every line and store the order, all or nothing (status ``placed``)."""
        wanted = sorted((line.book_id, line.quantity) for line in lines)
        async with self._sessions.begin() as session:
            # Book order: concurrent multi-line orders lock stock rows in one order,
            # so two of them never wait for each other.
            for book_id, quantity in wanted:
                # Check and take in ONE statement: the database evaluates the WHERE on
                # the row under its write lock, so no buyer slips in between.
                taken = await session.execute(
                    update(StockRow)
                    .where(StockRow.book_id == book_id, StockRow.quantity >= quantity)
                    .values(quantity=StockRow.quantity - quantity)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    raise await _refusal(session, book_id, quantity)
            priced = select(BookRow.id, BookRow.price).where(BookRow.id.in_(dict(wanted)))
            prices = dict((await session.execute(priced)).all())
            order = OrderRow(
                customer_id=customer_id,
                status="placed",
                total=sum(prices[book_id] * quantity for book_id, quantity in wanted),
                lines=[
                    OrderLineRow(book_id=book_id, quantity=quantity, unit_price=prices[book_id])
                    for book_id, quantity in wanted
                ],
            )
            session.add(order)
            await session.flush()
            return _out(order)

    async def change_status(self, order_id: int, expected: str, new: str) -> OrderOut | None:
        """Move the order from ``expected`` to ``new``; None when it is not in ``expected``.

        Cancelling gives the order's copies back to the stock, in the same transaction.
        """
        async with self._sessions.begin() as session:
            moved = await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.status == expected)
                .values(status=new)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                return None  # the conditional UPDATE is the guard: a second cancel returns nothing twice
            order = await _load_order(session, order_id)
            assert order is not None
            if new == "cancelled":
                for line in order.lines:
                    await session.execute(
                        update(StockRow)
                        .where(StockRow.book_id == line.book_id)
                        .values(quantity=StockRow.quantity + line.quantity)
                    )
            return _out(order)

    async def get_order(self, order_id: int) -> OrderOut | None:
        async with self._sessions() as session:
            order = await _load_order(session, order_id)
            return None if order is None else _out(order)

    async def list_orders(self, customer_id: int | None, *, before: int | None, limit: int) -> list[OrderOut]:
        """Newest first (by id); one customer's, or everyone's when ``customer_id`` is None.

        Two queries whatever ``limit``: the orders, then all their lines.
        """
        query = (
            select(OrderRow).options(selectinload(OrderRow.lines)).order_by(OrderRow.id.desc()).limit(limit)
        )
        if customer_id is not None:
            query = query.where(OrderRow.customer_id == customer_id)
        if before is not None:
            query = query.where(OrderRow.id < before)
        async with self._sessions() as session:
            return [_out(order) for order in await session.scalars(query)]


async def _load_order(session: AsyncSession, order_id: int) -> OrderRow | None:
    return await session.scalar(
        select(OrderRow).where(OrderRow.id == order_id).options(selectinload(OrderRow.lines))
    )


async def _refusal(session: AsyncSession, book_id: int, requested: int) -> Exception:
    """Why the conditional UPDATE matched no row: an unknown book, or too few copies."""
    available = await session.scalar(select(StockRow.quantity).where(StockRow.book_id == book_id))
    if available is None:
        return UnknownBook(book_id)
    return OutOfStock(book_id, requested, available)


def _out(order: OrderRow) -> OrderOut:
    return OrderOut(
        id=order.id,
        customer_id=order.customer_id,
        status=order.status,
        total=order.total,
        lines=[
            LineOut(book_id=line.book_id, quantity=line.quantity, unit_price=line.unit_price)
            for line in order.lines
        ],
    )
