"""A GraphQL API over the bookstore: a query budget, a depth limit, the caller's orders only

Reference solution. The contract is stated in ``exercises/ex12_graphql.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeVar

import strawberry
from fastapi import FastAPI, Request
from graphql import GraphQLError
from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, QueryDepthLimiter
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.types import Info

from coursekit.bookstore import Author, Book, Customer, Order, OrderLine, Review, Stock

__all__ = [
    "MAX_ALIASES",
    "MAX_BOOKS",
    "MAX_DEPTH",
    "MAX_LINES",
    "MAX_QUANTITY",
    "create_app",
    "current_customer_id",
]

MAX_DEPTH: Final = 6
MAX_ALIASES: Final = 10
MAX_BOOKS: Final = 100
MAX_QUANTITY: Final = 10
MAX_LINES: Final = 20
CUSTOMER_HEADER: Final = "X-Customer-Id"


def current_customer_id(request: Request) -> int | None:
    """The signed-in customer's id (stands in for notebook 06's token check), or None."""
    raw = request.headers.get(CUSTOMER_HEADER, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 9 else None


# --------------------------------------------------------------------- the request's database


class Database:
    """The request's session, used by one resolver at a time.

    GraphQL resolves sibling fields concurrently (aliases, and the batches of
    different loaders), and an AsyncSession must not run two operations at once.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._turn = asyncio.Lock()

    async def all(self, statement: Select[Any]) -> list[Any]:
        async with self._turn:
            return list(await self._session.scalars(statement))

    async def pairs(self, statement: Select[Any, Any]) -> dict[Any, Any]:
        async with self._turn:
            return {key: value for key, value in await self._session.execute(statement)}

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncSession]:
        async with self._turn:
            yield self._session


# --------------------------------------------------------------------- loaders

K = TypeVar("K")
V = TypeVar("V")


def in_key_order(keys: Sequence[K], found: dict[K, V], missing: V) -> list[V]:
    # A batch function must answer one value per key, in the keys' order:
    # the database returns rows in whatever order it likes and skips absent keys.
    return [found.get(key, missing) for key in keys]


@dataclass(frozen=True)
class Loaders:
    """One set per request: a loader caches what it loaded, for as long as it lives."""

    book: DataLoader[int, Book | None]
    author: DataLoader[int, Author | None]
    customer: DataLoader[int, Customer | None]
    reviews_of_book: DataLoader[int, list[Review]]
    books_of_author: DataLoader[int, list[Book]]
    lines_of_order: DataLoader[int, list[OrderLine]]
    stock_of_book: DataLoader[int, int]

    @classmethod
    def for_request(cls, database: Database) -> Loaders:
        async def by_id(model: Any, keys: list[int]) -> list[Any]:
            rows = await database.all(select(model).where(model.id.in_(keys)))
            return in_key_order(keys, {row.id: row for row in rows}, None)

        def loader_by_id(model: Any) -> DataLoader[int, Any]:
            return DataLoader(lambda keys: by_id(model, keys))

        async def reviews(book_ids: list[int]) -> list[list[Review]]:
            rows = await database.all(select(Review).where(Review.book_id.in_(book_ids)).order_by(Review.id))
            return in_key_order(book_ids, grouped(rows, lambda r: r.book_id), [])

        async def books(author_ids: list[int]) -> list[list[Book]]:
            rows = await database.all(select(Book).where(Book.author_id.in_(author_ids)).order_by(Book.id))
            return in_key_order(author_ids, grouped(rows, lambda r: r.author_id), [])

        async def lines(order_ids: list[int]) -> list[list[OrderLine]]:
            rows = await database.all(
                select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)
            )
            return in_key_order(order_ids, grouped(rows, lambda r: r.order_id), [])

        async def stock(book_ids: list[int]) -> list[int]:
            found = await database.pairs(
                select(Stock.book_id, Stock.quantity).where(Stock.book_id.in_(book_ids))
            )
            return in_key_order(book_ids, found, 0)

        return cls(
            book=loader_by_id(Book),
            author=loader_by_id(Author),
            customer=loader_by_id(Customer),
            reviews_of_book=DataLoader(reviews),
            books_of_author=DataLoader(books),
            lines_of_order=DataLoader(lines),
            stock_of_book=DataLoader(stock),
        )


def grouped(rows: Iterable[V], key: Callable[[V], int]) -> dict[int, list[V]]:
    groups: dict[int, list[V]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


class Context(BaseContext):
    def __init__(self, session: AsyncSession, customer_id: int | None) -> None:
        super().__init__()
        self.database = Database(session)
        self.customer_id = customer_id
        self.loaders = Loaders.for_request(self.database)


GraphQLInfo = Info[Context, None]


def signed_in(info: GraphQLInfo) -> int:
    if info.context.customer_id is None:
        raise GraphQLError("Authentication required.")
    return info.context.customer_id


# --------------------------------------------------------------------- types


async def loaded(value: Awaitable[V | None]) -> V:
    row = await value
    if row is None:  # a foreign key guarantees the row; None means the data is broken
        raise LookupError("a referenced row is missing")
    return row


@strawberry.type(name="Author")
class AuthorType:
    id: int
    name: str
    country: str

    @strawberry.field
    async def books(self, info: GraphQLInfo) -> list[BookType]:
        return [BookType.of(row) for row in await info.context.loaders.books_of_author.load(self.id)]

    @classmethod
    def of(cls, row: Author) -> AuthorType:
        return cls(id=row.id, name=row.name, country=row.country)


@strawberry.type(name="Customer")
class CustomerType:
    id: int
    name: str

    @strawberry.field
    async def orders(self, info: GraphQLInfo) -> list[OrderType]:
        """This customer's orders: empty unless it is the signed-in customer."""
        if info.context.customer_id != self.id:
            return []
        return await orders_of(info, self.id)

    @classmethod
    def of(cls, row: Customer) -> CustomerType:
        return cls(id=row.id, name=row.name)


@strawberry.type(name="Review")
class ReviewType:
    id: int
    rating: int
    title: str
    customer_id: strawberry.Private[int]

    @strawberry.field
    async def reviewer(self, info: GraphQLInfo) -> CustomerType:
        return CustomerType.of(await loaded(info.context.loaders.customer.load(self.customer_id)))

    @classmethod
    def of(cls, row: Review) -> ReviewType:
        return cls(id=row.id, rating=row.rating, title=row.title, customer_id=row.customer_id)


@strawberry.type(name="Book")
class BookType:
    id: int
    isbn: str
    title: str
    price: Decimal
    author_id: strawberry.Private[int]

    @strawberry.field
    async def author(self, info: GraphQLInfo) -> AuthorType:
        return AuthorType.of(await loaded(info.context.loaders.author.load(self.author_id)))

    @strawberry.field
    async def reviews(self, info: GraphQLInfo) -> list[ReviewType]:
        return [ReviewType.of(row) for row in await info.context.loaders.reviews_of_book.load(self.id)]

    @strawberry.field
    async def stock(self, info: GraphQLInfo) -> int:
        return await info.context.loaders.stock_of_book.load(self.id)

    @classmethod
    def of(cls, row: Book) -> BookType:
        return cls(id=row.id, isbn=row.isbn, title=row.title, price=row.price, author_id=row.author_id)


@strawberry.type(name="OrderLine")
class OrderLineType:
    quantity: int
    unit_price: Decimal
    book_id: strawberry.Private[int]

    @strawberry.field
    async def book(self, info: GraphQLInfo) -> BookType:
        return BookType.of(await loaded(info.context.loaders.book.load(self.book_id)))


@strawberry.type(name="Order")
class OrderType:
    id: int
    status: str
    placed_at: dt.datetime

    @strawberry.field
    async def lines(self, info: GraphQLInfo) -> list[OrderLineType]:
        rows = await info.context.loaders.lines_of_order.load(self.id)
        return [OrderLineType(quantity=r.quantity, unit_price=r.unit_price, book_id=r.book_id) for r in rows]

    @classmethod
    def of(cls, row: Order) -> OrderType:
        return cls(id=row.id, status=row.status, placed_at=row.placed_at)


async def orders_of(info: GraphQLInfo, customer_id: int) -> list[OrderType]:
    rows = await info.context.database.all(
        select(Order).where(Order.customer_id == customer_id).order_by(Order.id)
    )
    return [OrderType.of(row) for row in rows]


@strawberry.type
class Query:
    @strawberry.field
    async def books(self, info: GraphQLInfo, first: int = 20) -> list[BookType]:
        """Books by id, the first `first` (1 to 100)."""
        if not 1 <= first <= MAX_BOOKS:
            raise GraphQLError(f"first must be between 1 and {MAX_BOOKS}.")
        rows = await info.context.database.all(select(Book).order_by(Book.id).limit(first))
        return [BookType.of(row) for row in rows]

    @strawberry.field
    async def book(self, info: GraphQLInfo, id: int) -> BookType | None:
        row = await info.context.loaders.book.load(id)
        return None if row is None else BookType.of(row)

    @strawberry.field
    async def orders(self, info: GraphQLInfo) -> list[OrderType]:
        return await orders_of(info, signed_in(info))

    @strawberry.field
    async def order(self, info: GraphQLInfo, id: int) -> OrderType | None:
        """One of the signed-in customer's orders; null for any other id, existing or not."""
        rows = await info.context.database.all(
            select(Order).where(Order.id == id, Order.customer_id == signed_in(info))
        )
        return OrderType.of(rows[0]) if rows else None


# --------------------------------------------------------------------- the mutation


@strawberry.input
class OrderLineInput:
    book_id: int
    quantity: int


@strawberry.input
class PlaceOrderInput:
    lines: list[OrderLineInput]


@strawberry.type
class UserError:
    field: str
    code: str
    message: str


@strawberry.type
class PlaceOrderPayload:
    order: OrderType | None
    errors: list[UserError]


def input_errors(lines: list[OrderLineInput]) -> list[UserError]:
    errors = []
    if not 1 <= len(lines) <= MAX_LINES:
        errors.append(UserError(field="lines", code="LINES_OUT_OF_RANGE", message=f"1 to {MAX_LINES} lines."))
    seen: set[int] = set()
    for index, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            message = f"quantity must be 1 to {MAX_QUANTITY}."
            errors.append(
                UserError(field=f"lines.{index}.quantity", code="QUANTITY_OUT_OF_RANGE", message=message)
            )
        if line.book_id in seen:
            message = "each book at most once."
            errors.append(UserError(field=f"lines.{index}.bookId", code="DUPLICATE_BOOK", message=message))
        seen.add(line.book_id)
    return errors


async def place(session: AsyncSession, customer_id: int, lines: list[OrderLineInput]) -> PlaceOrderPayload:
    found = await session.execute(
        select(Book.id, Book.price).where(Book.id.in_([line.book_id for line in lines]))
    )
    prices = {book_id: price for book_id, price in found}
    unknown = [
        UserError(field=f"lines.{i}.bookId", code="UNKNOWN_BOOK", message="no such book.")
        for i, line in enumerate(lines)
        if line.book_id not in prices
    ]
    if unknown:
        return PlaceOrderPayload(order=None, errors=unknown)
    # One lock order for every buyer (by book id): two orders never wait for each other's rows.
    for index, line in sorted(enumerate(lines), key=lambda indexed: indexed[1].book_id):
        # Check and take in one statement: a read-then-write lets two buyers take the last copy.
        taken = await session.execute(
            update(Stock)
            .where(Stock.book_id == line.book_id, Stock.quantity >= line.quantity)
            .values(quantity=Stock.quantity - line.quantity)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()  # give back what earlier lines took
            message = "not enough copies in stock."
            return PlaceOrderPayload(
                order=None,
                errors=[UserError(field=f"lines.{index}.quantity", code="OUT_OF_STOCK", message=message)],
            )
    order = Order(
        customer_id=customer_id, placed_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), status="paid"
    )
    order.lines = [
        OrderLine(book_id=line.book_id, quantity=line.quantity, unit_price=prices[line.book_id])
        for line in lines
    ]
    session.add(order)
    await session.commit()
    return PlaceOrderPayload(order=OrderType.of(order), errors=[])


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def place_order(self, info: GraphQLInfo, input: PlaceOrderInput) -> PlaceOrderPayload:
        errors = input_errors(input.lines)
        if errors:
            return PlaceOrderPayload(order=None, errors=errors)
        customer_id = signed_in(info)
        async with info.context.database.exclusive() as session:
            return await place(session, customer_id, input.lines)


# --------------------------------------------------------------------- the app


def is_internal(error: GraphQLError) -> bool:
    # Errors the schema raised on purpose (GraphQLError) and validation errors
    # (no original error) are for the client; anything else is ours to hide.
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        # Factories, not instances: each operation gets fresh extension state.
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaskErrors(should_mask_error=is_internal),
    ],
)


def create_app(engine: AsyncEngine) -> FastAPI:
    """The bookstore's GraphQL API at POST /graphql (see the exercise's contract)."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def context(request: Request) -> AsyncIterator[Context]:
        # Built per request: a session, the caller, and loaders whose cache dies with the request.
        async with sessions() as session:
            yield Context(session, current_customer_id(request))

    app = FastAPI(title="Bookstore GraphQL")
    app.include_router(GraphQLRouter(schema, path="/graphql", context_getter=context, graphql_ide=None))
    return app
