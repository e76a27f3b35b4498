"""A TTL cache with single flight, and ETags for the catalog endpoints

The catalog (books and their prices) is read on every page of the shop, by
every visitor, and changes a few times a day. Its backend is slow. Put a cache
in front of it that never lets a crowd of misses through to the backend, and
let clients revalidate what they already hold for the price of a 304. This
docstring is the contract: ``tests/exercises/test_ex09_caching.py`` checks it,
one test class per task. ``check("ex09")`` shows which tasks pass;
``hint("ex09")`` helps with the first open one.

Given: the backend (``Catalog``: async reads, each one counted in ``calls``,
with the reads running at once in ``in_flight``), the models, ``CacheStats``
and the problem-details handlers. Everything below "yours" is yours.

Task 1 · TTLCache(*, ttl, max_entries=1024, clock=time.monotonic)
    ``await cache.get_or_load(key, loader)`` returns the value stored for the
    hashable ``key`` while it is fresh (a hit); otherwise (a miss) it awaits
    ``loader()`` (an async function of no arguments), stores its value and
    returns it.
    - ``clock()`` returns seconds (a float, only ever moving forward); the
      cache reads time from it and nowhere else (the tests move it by hand).
      A value is fresh for ``ttl`` seconds from the moment its load finished:
      ``ttl`` seconds later, to the exact instant, it is stale.
    - ``cache.invalidate(key)`` forgets the key's value (an unknown key is no
      error); the next call loads again.
    - The cache holds at most ``max_entries`` values (``len(cache)``); storing
      one more evicts the least recently used one: a hit is a use.
    - ``cache.stats`` is a ``CacheStats``: a call answered from a fresh stored
      value is a hit, every other call a miss (a call that waits for a load
      started by another caller included).
    - ``ttl <= 0`` or ``max_entries < 1`` is a ValueError.

Task 2 · Single flight: the cache under concurrency
    Requests arrive together: on a cold start or at the instant a popular key
    expires, hundreds of callers miss the same key at once (a cache stampede).
    - Concurrent misses of one key make exactly one ``loader()`` call; every
      one of those callers gets its value. Misses of different keys never wait
      for each other's loads.
    - When the loader raises, every caller waiting for that load gets the
      exception; nothing is stored, and the next call loads again (it neither
      waits forever nor gets the old exception).
    - A caller can be cancelled while it waits (a client disconnects, a
      timeout fires), the caller that started the load included: that cancels
      that caller, and only it. The other callers get the value, loaded once,
      and it is stored.
    - ``invalidate(key)`` while a load of that key is running (the price
      changed while the old price was being read): calls made after
      ``invalidate`` never get that load's value, and it is not stored. Callers
      that were already waiting for it get its value: they asked before the change.
    The event loop is asyncio's; each ``TTLCache`` is used from one loop.

Task 3 · Validators: ``etag_for(body)`` and ``if_none_match(header, etag)``
    - ``etag_for(body: bytes) -> str``: a strong entity tag (RFC 9110 §8.8.3:
      in double quotes, no ``W/`` prefix) derived from the bytes alone: equal
      bytes give the same tag in any process, on any day; different bytes give
      a different tag.
    - ``if_none_match(header, etag) -> bool``: whether the value of an
      ``If-None-Match`` request header (``None`` when absent) matches the
      current representation's ``etag``, as RFC 9110 §13.1.2 defines it: ``*``
      matches any current representation; otherwise the header is a
      comma-separated list of entity tags, compared with the *weak*
      comparison (``W/"x"`` and ``"x"`` match each other). An entity tag may
      itself contain a comma (``"a,b"``). A header that is not a list of entity
      tags matches nothing.

Task 4 · create_app(catalog, *, ttl=60.0, clock=time.monotonic) -> FastAPI
    - ``GET /books/{book_id}`` -> 200, the book as JSON (``{"id": 1, "title":
      "Dune", "price": "9.99"}``); ``GET /books`` -> 200, a JSON list of every
      book by id. Both are served through a ``TTLCache(ttl=ttl, clock=clock)``
      per app: repeated and concurrent requests within the TTL cost one
      backend read per resource.
    - Both carry ``ETag: etag_for(<the body bytes sent>)`` and
      ``Cache-Control: public, no-cache``: any cache may store the page, but
      must revalidate before every reuse (a stale price is a support ticket).
    - A request whose ``If-None-Match`` matches the current ETag gets 304 Not
      Modified with an empty body, the same ``ETag`` and ``Cache-Control``.
    - ``PUT /books/{book_id}/price`` with ``{"price": "11.00"}`` (a
      ``PriceChange``) changes the price through ``catalog.set_price`` and
      answers 200 with the updated book. From then on both GETs show the new
      price, with a new ETag: old ETags no longer match.
    - An unknown book is a 404 problem, a bad id or price a 422 problem (the
      given handlers make both, with ``Cache-Control: no-store``). Errors are
      never cached: the next request asks the backend again.
    The tests create several apps in one process, each on its own ``Catalog``;
    two apps share no cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Final, Generic, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
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


# --------------------------------------------------------------------- given: cache statistics


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int

    @property
    def hit_ratio(self) -> float:
        calls = self.hits + self.misses
        return self.hits / calls if calls else 0.0


# --------------------------------------------------------------------- yours


class TTLCache(Generic[K, V]):
    """An in-process TTL cache whose concurrent misses of one key share one load (tasks 1 and 2)."""

    def __init__(
        self, *, ttl: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        raise NotImplementedError

    @property
    def stats(self) -> CacheStats:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    async def get_or_load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        raise NotImplementedError

    def invalidate(self, key: K) -> None:
        raise NotImplementedError


def etag_for(body: bytes) -> str:
    """A strong ETag for these representation bytes (task 3)."""
    raise NotImplementedError


def if_none_match(header: str | None, etag: str) -> bool:
    """Does an If-None-Match field value match ``etag``? (task 3)."""
    raise NotImplementedError


def create_app(
    catalog: Catalog, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The catalog API over ``catalog``: cached, with ETags and 304s (task 4)."""
    raise NotImplementedError
