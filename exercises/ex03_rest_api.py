"""Catalog and orders API to a written spec

Build the bookstore's public HTTP API with FastAPI. This docstring is the
contract: ``tests/exercises/test_ex03_rest_api.py`` checks it, one test class per
task. ``check("ex03")`` shows which tasks pass; ``hint("ex03")`` helps with the
first open one.

create_app(payments=None) -> FastAPI
    Returns a new app with its own, empty, in-memory store (kept on ``app.state``:
    the tests talk to the app through httpx's ASGITransport, which sends no
    lifespan events). Two apps never share data. Every route lives under ``/v1``.
    ``payments`` is the PaymentGateway orders are charged through (a new
    ``PaymentGateway()`` when omitted); tests pass their own to watch the charges.

Task 1 · Errors: one shape for every error
    Content-Type ``application/problem+json``; the body (RFC 9457) has at least
    ``type`` (str, a URI reference), ``title`` (str), ``status`` (int, equal to the
    HTTP status), ``detail`` (str) and ``instance`` (str, the request path, e.g.
    "/v1/books/7"). This covers your own errors, FastAPI's request validation,
    unknown paths and unsupported methods.
    - ``type`` "about:blank" means "nothing beyond the status code": its ``title``
      is then the status's reason phrase as RFC 9110 names it ("Not Found",
      "Method Not Allowed"...). Your own errors may use about:blank or a type URI
      of their own under https://bookstore.example/problems/ with a short title.
    - Request validation (a wrong body, query, header or path parameter, a body
      that is not JSON) -> 422 with type
      "https://bookstore.example/problems/validation-error" (about:blank defines no
      extension members, this type defines ``errors``), title "Unprocessable
      Content" (RFC 9110's name for 422; Python 3.11's ``http.HTTPStatus`` still says
      "Unprocessable Entity"), and ``errors``: a list of objects with exactly the
      keys ``loc`` (list, e.g. ["body", "isbn"]), ``msg`` and ``type``. Pydantic's
      error entries also carry ``input``: the submitted value, maybe a password.
      It never appears in a response.
    - 405 carries an ``Allow`` header listing every method of the path
      (``/v1/books/{book_id}``: GET and PATCH). Starlette alone lists only the
      methods of the first route that matches the path.
    - A non-integer id in a path (``/v1/books/abc``) is request validation: 422.

Task 2 · Books: create and read
    Representation, exactly these keys: ``id`` (int), ``isbn`` (str), ``title``,
    ``author``, ``genre`` (str), ``price`` (str with exactly two decimals: "12.50").
    The store also keeps ``cost_price`` (60% of the price) and ``created_by``
    ("api") per book (see BookRecord); they never appear in any response.

    POST /v1/books  body: isbn, title, author, genre, price; all required, no other key
        isbn    13 ASCII digits (no hyphens) with a valid ISBN-13 check digit
                (regex ``\\d`` also matches other scripts' digits)
        title   1-200 characters, author 1-120 characters, surrounding spaces stripped
        genre   one of GENRES
        price   JSON number or string, >= 0, at most 2 decimal places, <= 999999.99
        -> 201 book, header Location: /v1/books/{id}
        -> 409 problem when a book with this isbn exists (nothing changes)
        -> 422 problem for an invalid field or ANY unknown key (id, cost_price, role...):
           mass assignment is rejected, never silently applied or ignored
    GET /v1/books/{book_id}    -> 200 book | 404 problem

Task 3 · Books: partial update
    PATCH /v1/books/{book_id}  body: any subset of title, author, genre, price (same
        rules as POST; null is invalid; any other key, isbn included, is a 422)
        -> 200 book with only the sent fields changed | 404 | 422 (and nothing changes)

Task 4 · Books: list, one page at a time
    GET /v1/books?limit=&cursor=&genre=&sort=
        limit   1-100, default 20
        genre   one of GENRES (anything else is a 422 problem): only books of that genre
        sort    one of SORTS: "id", "title" or "price" ascending, "-id", "-title" or
                "-price" descending; ties broken by id in the same direction.
                Default "id". Anything else (e.g. "cost_price") is a 422 problem.
                Prices and ids compare as numbers: 9.99 < 10.00 < 100.00, 9 < 10.
        cursor  the opaque ``next_cursor`` of the previous page, up to 4096
                characters (every cursor the API issues must fit: titles may be
                200 characters of any script)
        -> 200 {"items": [book, ...], "next_cursor": str | null}
           next_cursor is null exactly when no items follow (no empty last page).
           Keyset pagination: each page continues strictly after the previous page's
           last sort key, so books added while a client pages cause no repeats and
           no skips.
        -> 400 problem for a malformed cursor (not one this API could have issued:
           bad base64, bad JSON, wrong fields, a price that is not a number) or a
           cursor issued for another sort or genre. Never a 500.

Task 5 · Orders, priced and charged by the server
    Representation, exactly these keys: ``id`` (int), ``lines`` (list of objects with
    exactly ``book_id``, ``quantity`` and ``unit_price``: str "x.xx") and ``total``
    (str "x.xx" = sum of unit_price * quantity). unit_price is the book's price when
    the order was placed; later price changes do not alter existing orders.

    POST /v1/orders  header Idempotency-Key (1-255 characters) required;
        body {"lines": [{"book_id": int 1-2147483647, "quantity": int 1-100}, ...]},
        1-50 lines, each book_id at most once, no other key anywhere (no prices, no
        totals: a client that names its own price is refused, not obeyed)
        -> the order's total is charged once through ``payments.charge(total)``,
           then 201 order, header Location: /v1/orders/{id}
        -> 422 problem for an invalid body (a 10,000-line order included: refused
           by validation, before any book is looked up), a missing Idempotency-Key,
           or a book_id that does not exist; nothing is stored or charged
    GET /v1/orders/{order_id}  -> 200 order | 404 problem

    Ids of books and of orders are 1, 2, 3, ... in creation order, per app; a
    request that creates nothing (an error, a replay) uses up no id.

Task 6 · Idempotency keys: a retried POST /v1/orders orders (and charges) once
    The first successful (201) response is remembered under its Idempotency-Key.
    - same key, same body (same JSON content: key order and whitespace do not
      matter) -> that response again: 201, same body, same Location; no new order,
      no new charge
    - same key, different body -> 422 problem; nothing changes
    - same key while the first request with it is still being processed (charging
      takes time: ``payments.charge`` awaits the network, and other requests run
      meanwhile) -> 409 problem ("still in flight"); the client retries later.
      However many requests with one key arrive together, exactly one order is
      placed and charged.
    - a request that fails (a 422, or the client goes away before the order is
      stored) leaves nothing behind: the same key may be used again.

Task 7 · An OpenAPI document (GET /openapi.json) that tells the truth
    Exactly the six operations above. Every operation declares 400 and 422 (FastAPI
    itself answers 400 to a body it cannot parse), the single-item GETs and PATCH
    declare 404, POST /v1/books and POST /v1/orders declare 409; all of them with
    content ``application/problem+json`` only (not FastAPI's default
    HTTPValidationError). The book schema shows exactly the public keys,
    Idempotency-Key is a required header, and every limit above is in the schema
    (maxLength, maxItems, minimum/maximum), so clients and fuzzers can see them
    (OWASP API4:2023, unrestricted resource consumption). A schemathesis fuzz run
    finds no 5xx and no response that contradicts the document.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, get_args

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request

__all__ = ["GENRES", "SORTS", "PaymentGateway", "create_app"]

Genre = Literal[
    "biography", "business", "cooking", "fantasy", "fiction",
    "history", "mystery", "poetry", "science", "travel",
]  # fmt: skip
Sort = Literal["id", "-id", "title", "-title", "price", "-price"]
GENRES: Final[tuple[str, ...]] = get_args(Genre)
SORTS: Final[tuple[str, ...]] = get_args(Sort)


class PaymentGateway:
    """The card processor (given): a stand-in for a remote service, so every call awaits.

    ``charges`` lists every amount charged, in order: a customer charged twice shows here.
    """

    def __init__(self, latency: float = 0.005) -> None:
        self.latency = latency
        self.charges: list[Decimal] = []

    async def charge(self, amount: Decimal) -> None:
        await anyio.sleep(self.latency)  # the network round trip
        self.charges.append(amount)


# ---------------------------------------------------------------- storage (given)


@dataclass
class BookRecord:
    """A book as the store keeps it: internal fields included. Never returned as is."""

    id: int
    isbn: str
    title: str
    author: str
    genre: str
    price: Decimal
    cost_price: Decimal  # internal: what the store pays the publisher
    created_by: str  # internal audit field


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

    payments: PaymentGateway
    books: dict[int, BookRecord] = field(default_factory=dict)
    orders: dict[int, OrderRecord] = field(default_factory=dict)
    idempotency: dict[str, Any] = field(default_factory=dict)  # what to keep per key: yours


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


# ---------------------------------------------------------------- routes

books = APIRouter(prefix="/books", tags=["books"])


@books.get("")
async def list_books(store: StoreDep) -> dict[str, Any]:
    """A page of books: limit, cursor, genre and sort as the contract says (Task 4)."""
    raise NotImplementedError


@books.post("", status_code=201)
async def create_book(store: StoreDep) -> dict[str, Any]:
    """Create a book from a validated body; 201 with Location (Task 2)."""
    raise NotImplementedError


@books.get("/{book_id}")
async def get_book(book_id: int, store: StoreDep) -> dict[str, Any]:
    """One book, or a 404 problem (Task 2)."""
    raise NotImplementedError


@books.patch("/{book_id}")
async def update_book(book_id: int, store: StoreDep) -> dict[str, Any]:
    """Change only the fields the client sent (Task 3)."""
    raise NotImplementedError


orders = APIRouter(prefix="/orders", tags=["orders"])


@orders.post("", status_code=201)
async def create_order(store: StoreDep) -> dict[str, Any]:
    """Place, price and charge an order (Task 5), at most once per Idempotency-Key (Task 6)."""
    raise NotImplementedError


@orders.get("/{order_id}")
async def get_order(order_id: int, store: StoreDep) -> dict[str, Any]:
    """One order, or a 404 problem (Task 5)."""
    raise NotImplementedError


def create_app(payments: PaymentGateway | None = None) -> FastAPI:
    """A new app with its own empty store, serving /v1/books and /v1/orders."""
    app = FastAPI(title="Bookstore API", version="1.0.0")
    app.state.store = Store(payments=payments if payments is not None else PaymentGateway())
    v1 = APIRouter(prefix="/v1")
    v1.include_router(books)
    v1.include_router(orders)
    app.include_router(v1)
    return app
