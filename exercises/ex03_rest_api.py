"""Catalog and orders API to a written spec

Build the bookstore's public HTTP API with FastAPI. This docstring is the
contract: ``tests/exercises/test_ex03_rest_api.py`` checks every line of it.

create_app() -> FastAPI
    Returns a new app with its own, empty, in-memory store (kept on ``app.state``:
    the tests talk to the app through httpx's ASGITransport, which sends no
    lifespan events). Two apps never share data. Every route lives under ``/v1``.

Errors: one shape for every 4xx
    Content-Type ``application/problem+json``; the body (RFC 9457) has at least
    ``type`` (str, a URI reference; "about:blank" is fine), ``title`` (str),
    ``status`` (int, equal to the HTTP status), ``detail`` (str) and
    ``instance`` (str, the request path, e.g. "/v1/books/7"). This covers your
    own errors, FastAPI's request validation, unknown paths and unsupported methods.
    - 422 from request validation also has ``errors``: a list of objects with
      exactly the keys ``loc`` (list, e.g. ["body", "isbn"]), ``msg`` and ``type``.
      Never echo the submitted value (it may be a password).
    - 405 has an ``Allow`` header listing every method of the path
      (``/v1/books/{book_id}``: GET and PATCH; Starlette alone lists only GET).

Books
    Representation, exactly these keys: ``id`` (int), ``isbn`` (str), ``title``,
    ``author``, ``genre`` (str), ``price`` (str with exactly two decimals: "12.50").
    The store also keeps ``cost_price`` and ``created_by`` per book (see
    BookRecord); they never appear in any response.

    POST /v1/books  body: isbn, title, author, genre, price; all required, no other key
        isbn    13 ASCII digits (no hyphens) with a valid ISBN-13 check digit
        title   1-200 characters, author 1-120 characters, surrounding spaces stripped
        genre   one of GENRES
        price   JSON number or string, >= 0, at most 2 decimal places, <= 999999.99
        -> 201 book, header Location: /v1/books/{id}
        -> 409 problem when a book with this isbn exists (nothing changes)
        -> 422 problem for an invalid field or ANY unknown key (id, cost_price, role...):
           mass assignment is rejected, never silently applied or ignored
    GET /v1/books/{book_id}    -> 200 book | 404 problem | 422 problem (id not an int)
    PATCH /v1/books/{book_id}  body: any subset of title, author, genre, price (same
        rules; null is invalid; any other key, isbn included, is a 422)
        -> 200 book with only the sent fields changed | 404 | 422 (and nothing changes)
    GET /v1/books?limit=&cursor=&genre=&sort=
        limit   1-100, default 20
        genre   one of GENRES: only books of that genre
        sort    one of SORTS: "id", "title" or "price" ascending, "-id", "-title" or
                "-price" descending; ties broken by id in the same direction.
                Default "id". Anything else (e.g. "cost_price") is a 422 problem.
        cursor  the opaque ``next_cursor`` of the previous page
        -> 200 {"items": [book, ...], "next_cursor": str | null}
           next_cursor is null exactly when no items follow (no empty last page).
           Keyset pagination: each page continues strictly after the previous page's
           last sort key, so books added while a client pages cause no repeats.
        -> 400 problem for a cursor this API did not issue, or issued for another sort
           or genre. Never a 500.

Orders
    Representation, exactly these keys: ``id`` (int), ``lines`` (list of objects with
    exactly ``book_id``, ``quantity`` and ``unit_price``: str "x.xx") and ``total``
    (str "x.xx" = sum of unit_price * quantity). unit_price is the book's price when
    the order was placed; later price changes do not alter existing orders.

    POST /v1/orders  header Idempotency-Key (1-255 characters) required;
        body {"lines": [{"book_id": int >= 1, "quantity": 1-100}, ...]}, 1-50 lines,
        each book_id at most once, no other key anywhere (no prices, no totals)
        -> 201 order, header Location: /v1/orders/{id}
        -> 422 problem for an invalid body, a missing Idempotency-Key, or a book_id
           that does not exist; nothing is stored, so the key may be retried
        Idempotency: the first 201 response is remembered under its key.
        - same key, same body (same JSON content: key order and whitespace do not
          matter) -> that response again: 201, same body, same Location, plus the
          header ``Idempotent-Replayed: true`` (absent on the first response);
          no new order, also when the retries arrive concurrently
        - same key, different body -> 422 problem; nothing changes
    GET /v1/orders/{order_id}  -> 200 order | 404 problem

    Ids of books and of orders are 1, 2, 3, ... in creation order, per app; a
    request that creates nothing (an error, a replay) uses up no id.

OpenAPI (GET /openapi.json)
    Exactly the six operations above. Every operation declares 400 and 422 (FastAPI
    itself answers 400 to a body it cannot decode), the single-item GETs and PATCH
    declare 404, POST /v1/books declares 409; all of them with content
    ``application/problem+json`` only (not FastAPI's default HTTPValidationError).
    The book schema shows exactly the public keys, and Idempotency-Key is a
    required header. A schemathesis fuzz run finds no 5xx and no response that
    contradicts the document.

Tasks, in the order of the TODOs below (each is a test class):
    1. problem details for every error      5. orders priced by the server
    2. books: schemas, create and read      6. idempotency keys
    3. partial update (PATCH)               7. an OpenAPI that tells the truth,
    4. cursor pagination, filter, sort         checked by fuzzing
``check("ex03")`` shows which parts pass; ``hint("ex03")`` helps when stuck.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, get_args

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

__all__ = ["GENRES", "SORTS", "create_app"]

Genre = Literal[
    "biography", "business", "cooking", "fantasy", "fiction",
    "history", "mystery", "poetry", "science", "travel",
]  # fmt: skip
Sort = Literal["id", "-id", "title", "-title", "price", "-price"]
GENRES: Final[tuple[str, ...]] = get_args(Genre)
SORTS: Final[tuple[str, ...]] = get_args(Sort)


# ---------------------------------------------------------------- storage (given)


@dataclass
class BookRecord:
    """A book as the store keeps it: internal fields included. Never return it as is."""

    id: int
    isbn: str
    title: str
    author: str
    genre: str
    price: Decimal
    cost_price: Decimal  # internal: what the store pays (set it to 60% of price)
    created_by: str  # internal audit field (set it to "api")


@dataclass(frozen=True)
class OrderLineRecord:
    book_id: int
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderRecord:
    id: int
    lines: tuple[OrderLineRecord, ...]


@dataclass
class Store:
    """Everything one app remembers. create_app() makes a new one for each app."""

    books: dict[int, BookRecord] = field(default_factory=dict)
    orders: dict[int, OrderRecord] = field(default_factory=dict)
    # TODO 6: decide what to remember per Idempotency-Key (a fingerprint of the
    # request and the first response) and keep it here.
    idempotency: dict[str, Any] = field(default_factory=dict)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


# ---------------------------------------------------------------- schemas


class BookCreate(BaseModel):
    """TODO 2: forbid unknown keys and add the validation rules of the spec
    (ISBN-13 check digit, lengths, genre, price >= 0 with at most 2 decimals)."""

    isbn: str
    title: str
    author: str
    genre: str
    price: Decimal


# TODO 1: a Problem model (type, title, status, detail, instance, optional errors).

# TODO 2: BookOut (only the public keys; price rendered as "12.50").
# TODO 3: BookUpdate (every field optional, never null).
# TODO 4: a page model {"items": [...], "next_cursor": ...}.
# TODO 5: the order models (request without prices; response with unit_price, total).


# ---------------------------------------------------------------- routes

books = APIRouter(prefix="/books", tags=["books"])


@books.get("")
async def list_books(store: StoreDep) -> dict[str, Any]:
    """TODO 4: limit, cursor, genre and sort query parameters; keyset pagination."""
    raise NotImplementedError


@books.post("", status_code=201)
async def create_book(payload: BookCreate, store: StoreDep) -> dict[str, Any]:
    """TODO 2: store the book (409 on a duplicate isbn); 201 + Location; public keys only."""
    raise NotImplementedError


@books.get("/{book_id}")
async def get_book(book_id: int, store: StoreDep) -> dict[str, Any]:
    """TODO 2: the book, or a 404 problem."""
    raise NotImplementedError


@books.patch("/{book_id}")
async def update_book(book_id: int, store: StoreDep) -> dict[str, Any]:
    """TODO 3: partial update: change only the keys the client sent."""
    raise NotImplementedError


orders = APIRouter(prefix="/orders", tags=["orders"])


@orders.post("", status_code=201)
async def create_order(store: StoreDep) -> dict[str, Any]:
    """TODO 5: lines priced by the server, 201 + Location. TODO 6: Idempotency-Key."""
    raise NotImplementedError


@orders.get("/{order_id}")
async def get_order(order_id: int, store: StoreDep) -> dict[str, Any]:
    """TODO 5: the order, or a 404 problem."""
    raise NotImplementedError


def create_app() -> FastAPI:
    """A new app with its own empty store, serving /v1/books and /v1/orders."""
    app = FastAPI(title="Bookstore API", version="1.0.0")
    app.state.store = Store()
    v1 = APIRouter(prefix="/v1")
    v1.include_router(books)
    v1.include_router(orders)
    app.include_router(v1)
    # TODO 1: exception handlers so that EVERY error is application/problem+json:
    #   your own errors, RequestValidationError, Starlette's HTTPException (404, 405).
    # TODO 7: declare the error responses in the OpenAPI as application/problem+json.
    return app
