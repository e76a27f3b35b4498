"""A TTL cache with single flight, and ETags for the catalog endpoints

Reference solution. The contract is stated in ``exercises/ex09_caching.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Final, Generic, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "Book",
    "BookNotFound",
    "CacheStats",
    "Catalog",
    "PriceChange",
    "TTLCache",
    "create_app",
    "etag_for",
    "if_none_match",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# --------------------------------------------------------------------- given: the catalog backend


class Book(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    price: Decimal


class PriceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: Annotated[Decimal, Field(gt=0, le=10_000, decimal_places=2)]


class BookNotFound(Exception):
    def __init__(self, book_id: int) -> None:
        super().__init__(f"no book with id {book_id}")
        self.book_id = book_id


SEED_BOOKS: Final = (
    Book(id=1, title="Dune", price=Decimal("9.99")),
    Book(id=2, title="Solaris", price=Decimal("12.50")),
    Book(id=3, title="Kindred", price=Decimal("8.75")),
)


class Catalog:
    """The slow backend behind the catalog (a database, another service): every read is counted.

    ``calls`` counts reads by kind ("book", "books"); ``in_flight`` is the number of reads
    running now and ``peak_in_flight`` the most that ever ran at once.
    """

    def __init__(self, books: tuple[Book, ...] = SEED_BOOKS, *, delay: float = 0.02) -> None:
        self._books = {book.id: book for book in books}
        self.delay = delay
        self.calls: dict[str, int] = {"book": 0, "books": 0}
        self.in_flight = 0
        self.peak_in_flight = 0

    async def _read(self, kind: str) -> None:
        self.calls[kind] += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1

    async def get_book(self, book_id: int) -> Book:
        """The book, or BookNotFound."""
        await self._read("book")
        try:
            return self._books[book_id]
        except KeyError:
            raise BookNotFound(book_id) from None

    async def list_books(self) -> list[Book]:
        """Every book, by id."""
        await self._read("books")
        return [self._books[book_id] for book_id in sorted(self._books)]

    def set_price(self, book_id: int, price: Decimal) -> Book:
        """Change a price (instantly, no read counted); BookNotFound for an unknown id."""
        if book_id not in self._books:
            raise BookNotFound(book_id)
        book = self._books[book_id].model_copy(update={"price": price})
        self._books[book_id] = book
        return book


PROBLEM_JSON: Final = "application/problem+json"
NO_STORE: Final = {"Cache-Control": "no-store"}  # an error is never a representation to reuse


def problem(status: int, title: str, detail: str, instance: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": instance}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=NO_STORE)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error as an RFC 9457 problem with ``Cache-Control: no-store``."""

    @app.exception_handler(BookNotFound)
    async def not_found(request: Request, exc: BookNotFound) -> Response:
        return problem(404, "Not Found", str(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
        return problem(422, "Unprocessable Content", f"invalid: {', '.join(fields)}", request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), request.url.path)


# --------------------------------------------------------------------- task 1 and 2: the cache


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int

    @property
    def hit_ratio(self) -> float:
        calls = self.hits + self.misses
        return self.hits / calls if calls else 0.0


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float


class TTLCache(Generic[K, V]):
    """An in-process TTL cache whose misses of one key share one load (single flight)."""

    def __init__(
        self, *, ttl: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl <= 0 or max_entries < 1:
            raise ValueError("ttl must be > 0 and max_entries >= 1")
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()  # least recently used first
        self._loading: dict[K, asyncio.Task[V]] = {}
        self._hits = 0
        self._misses = 0

    @property
    def stats(self) -> CacheStats:
        return CacheStats(hits=self._hits, misses=self._misses)

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.expires_at:
            self._entries.move_to_end(key)  # a hit is a use: LRU keeps what is read
            self._hits += 1
            return entry.value
        self._misses += 1
        load = self._loading.get(key)
        if load is None:
            # The load is a task of its own, not part of this caller: cancelling this caller
            # (a client gone, a timeout) must not fail every other caller waiting for it.
            load = asyncio.ensure_future(self._load(key, loader))
            self._loading[key] = load
        # shield: a cancelled waiter stops waiting; the load goes on for the others.
        return await asyncio.shield(load)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)
        # Detach the load in flight: it read the data before the change, so its value must
        # not be stored, and callers from now on start a fresh load instead of joining it.
        self._loading.pop(key, None)

    async def _load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        this_load = asyncio.current_task()
        try:
            value = await loader()
            if self._loading.get(key) is this_load:  # not invalidated while loading
                self._store(key, value)
            return value
        finally:
            # On success and on error alike: an entry left here would make every later
            # caller await a finished load forever (or re-raise its old error).
            if self._loading.get(key) is this_load:
                del self._loading[key]

    def _store(self, key: K, value: V) -> None:
        self._entries[key] = _Entry(value, self._clock() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


# --------------------------------------------------------------------- task 3: validators

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc excludes only DQUOTE,
# space and controls, so a tag may contain a comma: split on tags, never on commas.
ENTITY_TAG: Final = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def etag_for(body: bytes) -> str:
    """A strong ETag: a digest of the representation's bytes, so equal bytes, equal tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def if_none_match(header: str | None, etag: str) -> bool:
    """Does an If-None-Match field value match ``etag``? (RFC 9110 §13.1.2, weak comparison)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    position, tags = 0, []
    while position < len(header):
        match = ENTITY_TAG.match(header, position)
        if match is None:
            return False  # a malformed field: ignore the condition, send the representation
        tags.append(match.group(2))
        position = match.end()
    # Weak comparison: W/"x" and "x" match; only the opaque tags are compared.
    return opaque in tags


# --------------------------------------------------------------------- task 4: the endpoints

CACHE_CONTROL: Final = "public, no-cache"
BOOK_LIST: Final = TypeAdapter(list[Book])


@dataclass(frozen=True)
class Representation:
    body: bytes
    etag: str


def represent(body: bytes) -> Representation:
    return Representation(body, etag_for(body))


def conditional(request: Request, representation: Representation) -> Response:
    headers = {"ETag": representation.etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match(request.headers.get("if-none-match"), representation.etag):
        return Response(status_code=304, headers=headers)  # no body: the client has it
    return Response(representation.body, media_type="application/json", headers=headers)


def create_app(
    catalog: Catalog, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    app = FastAPI(title="ex09 catalog")
    install_problem_handlers(app)
    # The cache holds serialized representations: a hit costs no backend call, no
    # serialization and no hashing.
    cache: TTLCache[tuple[str, int], Representation] = TTLCache(ttl=ttl, clock=clock)
    app.state.cache = cache
    everything = ("books", 0)

    async def load_book(book_id: int) -> Representation:
        return represent((await catalog.get_book(book_id)).model_dump_json().encode())

    async def load_list() -> Representation:
        return represent(BOOK_LIST.dump_json(await catalog.list_books()))

    @app.get("/books")
    async def list_books(request: Request) -> Response:
        return conditional(request, await cache.get_or_load(everything, load_list))

    @app.get("/books/{book_id}")
    async def get_book(book_id: int, request: Request) -> Response:
        return conditional(request, await cache.get_or_load(("book", book_id), lambda: load_book(book_id)))

    @app.put("/books/{book_id}/price")
    async def set_price(book_id: int, change: PriceChange) -> Response:
        book = catalog.set_price(book_id, change.price)
        cache.invalidate(("book", book_id))
        cache.invalidate(everything)
        representation = represent(book.model_dump_json().encode())
        headers = {"ETag": representation.etag, "Cache-Control": "no-store"}
        return Response(representation.body, media_type="application/json", headers=headers)

    return app
