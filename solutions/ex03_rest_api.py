"""Catalog and orders API to a written spec

Reference solution. The contract (every status code, header and body) is stated
in ``exercises/ex03_rest_api.py``; this module implements it in five layers:

1. storage: internal records and in-memory repositories (the API never returns these);
2. schemas: what clients may send (``extra="forbid"``, every size bounded) and what they get back;
3. problem details: one RFC 9457 shape for every error, declared in the OpenAPI;
4. cursors: opaque keyset pagination cursors, checked on the way back in;
5. routes: ``/v1/books`` and ``/v1/orders``, assembled by :func:`create_app`.
"""

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Final, Literal, get_args

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

__all__ = ["GENRES", "SORTS", "PaymentGateway", "create_app"]

Genre = Literal[
    "biography", "business", "cooking", "fantasy", "fiction",
    "history", "mystery", "poetry", "science", "travel",
]  # fmt: skip
Sort = Literal["id", "-id", "title", "-title", "price", "-price"]
GENRES: Final[tuple[str, ...]] = get_args(Genre)
SORTS: Final[tuple[str, ...]] = get_args(Sort)

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_BASE: Final = "https://bookstore.example/problems/"
CENT: Final = Decimal("0.01")
# Ids fit a 32-bit SQL integer column (notebook 04 moves this store into a database).
MAX_ID: Final = 2_147_483_647
# Internal business rule: what the store pays the publisher, as a share of the price.
COST_SHARE: Final = Decimal("0.60")


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


# --------------------------------------------------------------------------- 1. storage


@dataclass
class BookRecord:
    """A book as the store keeps it. Never serialised directly: see BookOut."""

    id: int
    isbn: str
    title: str
    author: str
    genre: str
    price: Decimal
    cost_price: Decimal  # internal: margin data must not leak to clients
    created_by: str  # internal audit field


@dataclass(frozen=True)
class OrderLineRecord:
    book_id: int
    quantity: int
    unit_price: Decimal  # copied at order time: later price changes do not rewrite history


def lines_total(lines: Iterable[OrderLineRecord]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))


@dataclass(frozen=True)
class OrderRecord:
    id: int
    lines: tuple[OrderLineRecord, ...]

    @property
    def total(self) -> Decimal:
        return lines_total(self.lines)


@dataclass(frozen=True)
class SavedResponse:
    """What an Idempotency-Key remembers once its request succeeded: fingerprint and answer."""

    fingerprint: str
    location: str
    body: dict[str, Any]


@dataclass(frozen=True)
class InFlight:
    """What an Idempotency-Key holds while its first request is still being processed."""


SortValue = int | str | Decimal
SortKey = tuple[SortValue, int]  # (sort field value, id): the id breaks ties, so keys are unique


def sort_key(book: BookRecord, field_name: str) -> SortKey:
    # The typed value (Decimal, int), never its text: as text "10.00" < "9.99" and "10" < "9".
    value: SortValue = getattr(book, field_name)
    return (value, book.id)


class DuplicateIsbnError(Exception):
    pass


class BookRepository:
    """In-memory books. Same small interface a SQL repository would offer (notebook 04)."""

    def __init__(self) -> None:
        self._rows: dict[int, BookRecord] = {}
        self._ids_by_isbn: dict[str, int] = {}
        self._next_id = 1

    def add(self, *, isbn: str, title: str, author: str, genre: str, price: Decimal) -> BookRecord:
        if isbn in self._ids_by_isbn:
            raise DuplicateIsbnError(isbn)
        book = BookRecord(
            id=self._next_id, isbn=isbn, title=title, author=author, genre=genre, price=price,
            cost_price=(price * COST_SHARE).quantize(CENT), created_by="api",
        )  # fmt: skip
        self._next_id += 1
        self._rows[book.id] = book
        self._ids_by_isbn[isbn] = book.id
        return book

    def get(self, book_id: int) -> BookRecord | None:
        return self._rows.get(book_id)

    def page(
        self, *, field_name: str, descending: bool, genre: str | None,
        after: SortKey | None, limit: int,
    ) -> list[BookRecord]:  # fmt: skip
        """Up to ``limit`` books strictly after ``after`` in (field, id) order: keyset paging."""
        rows = [b for b in self._rows.values() if genre is None or b.genre == genre]
        rows.sort(key=lambda b: sort_key(b, field_name), reverse=descending)
        if after is not None:
            if descending:
                rows = [b for b in rows if sort_key(b, field_name) < after]
            else:
                rows = [b for b in rows if sort_key(b, field_name) > after]
        return rows[:limit]


class OrderRepository:
    def __init__(self) -> None:
        self._rows: dict[int, OrderRecord] = {}

    def add(self, lines: tuple[OrderLineRecord, ...]) -> OrderRecord:
        order = OrderRecord(id=len(self._rows) + 1, lines=lines)
        self._rows[order.id] = order
        return order

    def get(self, order_id: int) -> OrderRecord | None:
        return self._rows.get(order_id)


@dataclass
class Store:
    """Everything one app instance remembers. create_app() builds a fresh one."""

    payments: PaymentGateway
    books: BookRepository = field(default_factory=BookRepository)
    orders: OrderRepository = field(default_factory=OrderRepository)
    idempotency: dict[str, SavedResponse | InFlight] = field(default_factory=dict)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


# --------------------------------------------------------------------------- 2. schemas


def check_isbn13(value: str) -> str:
    """Reject a wrong ISBN-13 check digit (weights 1, 3, 1, 3, ... over the first 12)."""
    total = sum(int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(value[:12]))
    if (10 - total % 10) % 10 != int(value[12]):
        raise ValueError("ISBN-13 check digit is wrong")
    return value


def normalise_price(value: Decimal) -> Decimal:
    # ge=0 lets -0.0 through; abs() drops the sign so it never prints as "-0.00".
    return abs(value).quantize(CENT)


# [0-9], not \d: \d also matches other scripts' digits (for example Arabic-Indic).
Isbn = Annotated[str, StringConstraints(pattern=r"^[0-9]{13}$"), AfterValidator(check_isbn13)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
# le= puts the cap in the OpenAPI schema as a maximum; max_digits alone would not show it.
PriceIn = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("999999.99"), max_digits=8, decimal_places=2),
    AfterValidator(normalise_price),
]
# Money goes out as a string with exactly two decimals: JSON numbers are floats to most clients.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "examples": ["12.50"]}),
]


class BookCreate(BaseModel):
    """POST body. extra="forbid": an unknown key (id, cost_price, ...) is a 422, not ignored."""

    model_config = ConfigDict(extra="forbid")

    isbn: Isbn
    title: Title
    author: Author
    genre: Genre
    price: PriceIn


class BookUpdate(BaseModel):
    """PATCH body: any subset of the editable fields. ISBN and id are not editable."""

    model_config = ConfigDict(extra="forbid")

    # MISSING, not None: a key may be omitted, but null is rejected (the fields are not
    # nullable), the OpenAPI shows no null, and model_dump() leaves omitted keys out.
    title: Title | MISSING = MISSING
    author: Author | MISSING = MISSING
    genre: Genre | MISSING = MISSING
    price: PriceIn | MISSING = MISSING


class BookOut(BaseModel):
    """What clients see: a whitelist. cost_price and created_by are simply not here."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    isbn: str
    title: str
    author: str
    genre: str
    price: Money


class BookPage(BaseModel):
    items: list[BookOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    book_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(ge=1, le=100)


class OrderCreate(BaseModel):
    """POST body. No prices or totals: the server computes them (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    # max_length bounds the work one request can cause (OWASP API4:2023): a 10,000-line
    # order is refused by validation, before a single book is looked up or charged.
    lines: list[OrderLineIn] = Field(min_length=1, max_length=50)

    @field_validator("lines")
    @classmethod
    def one_line_per_book(cls, lines: list[OrderLineIn]) -> list[OrderLineIn]:
        book_ids = [line.book_id for line in lines]
        if len(set(book_ids)) != len(book_ids):
            raise ValueError("each book_id may appear only once")
        return lines


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    book_id: int
    quantity: int
    unit_price: Money


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lines: list[OrderLineOut]
    total: Money


# --------------------------------------------------------------------------- 3. problems

VALIDATION_PROBLEM: Final = PROBLEM_BASE + "validation-error"
# RFC 9110 renamed these two; Python 3.11's http.HTTPStatus still has the old phrases.
RFC9110_PHRASES: Final = {413: "Content Too Large", 422: "Unprocessable Content"}


def reason_phrase(status: int) -> str:
    return RFC9110_PHRASES.get(status) or HTTPStatus(status).phrase


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details: the one shape of every error this API returns."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    # Extension member of the validation-error type only (about:blank defines no extensions).
    errors: list[FieldError] | SkipJsonSchema[None] = None


class ProblemError(Exception):
    """Raise anywhere in a route; the handler turns it into a problem response."""

    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.type, self.title, self.detail = status, PROBLEM_BASE + slug, title, detail


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    # RFC 9457: with type "about:blank" the title is the status's reason phrase.
    problem = Problem(
        type=type_, title=title or reason_phrase(status), status=status, detail=detail,
        instance=request.url.path, errors=errors,
    )  # fmt: skip
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def allowed_methods(request: Request) -> str:
    """Every method the path supports, for the Allow header a 405 must carry (RFC 9110).

    Starlette lists only the methods of the first route matching the path, so for
    /v1/books/1 it would say "GET" and hide PATCH, which lives on a second route.
    Asking each route "would you fully match this method?" uses only public API.
    """
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error path ends here, so clients parse exactly one error format."""

    @app.exception_handler(ProblemError)
    async def domain_problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(request, exc.status, exc.detail, type_=exc.type, title=exc.title)

    @app.exception_handler(StarletteHTTPException)  # also FastAPI's HTTPException, 404s, 405s
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code < 400:  # e.g. a 304 carries no body at all
            return Response(status_code=exc.status_code, headers=exc.headers)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(request, exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        # Keep loc/msg/type only: "input" would echo what the client sent (maybe a secret)
        # and "ctx" may hold exception objects that are not even JSON serialisable.
        errors = [
            FieldError(loc=list(e["loc"]), msg=str(e["msg"]), type=str(e["type"])) for e in exc.errors()
        ]
        detail = f"The request is invalid: {len(errors)} error(s), see 'errors'."
        # A type of our own, not about:blank: it is the type that defines the errors member.
        return problem_response(
            request, 422, detail, type_=VALIDATION_PROBLEM, title=reason_phrase(422), errors=errors
        )

    @app.exception_handler(Exception)
    async def server_problem(request: Request, exc: Exception) -> Response:
        # No exception text: internals (SQL, paths) are for the logs, not for clients.
        return problem_response(request, 500, "An unexpected error occurred.")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of error responses (media type fixed up by problem_openapi)."""
    return {status: {"model": Problem, "description": reason_phrase(status)} for status in statuses}


def problem_openapi(app: FastAPI) -> None:
    """Declare error bodies as application/problem+json in the generated OpenAPI.

    FastAPI files every declared response model under the route's media type
    (application/json); errors are really sent as application/problem+json.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path_item in schema["paths"].values():
                for operation in path_item.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and "application/json" in content:
                            content[PROBLEM_JSON] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


# --------------------------------------------------------------------------- 4. cursors

# Room for the longest cursor this API issues, with margin: a 200-character title is at
# most 1,200 bytes as Pydantic writes JSON (control characters become \uXXXX; json.dumps
# would write an emoji as two such escapes, 2,400 bytes) and base64 adds a third. A cap
# below that would reject the API's own cursors.
MAX_CURSOR_LENGTH: Final = 4096


class CursorData(BaseModel):
    """What a cursor carries. Bound to its sort and filter: reuse elsewhere is rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sort: Sort
    genre: Genre | None
    value: str
    id: int


def invalid_cursor(detail: str) -> ProblemError:
    return ProblemError(400, "invalid-cursor", "Invalid cursor", detail)


def encode_cursor(data: CursorData) -> str:
    raw = data.model_dump_json().encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, *, sort: Sort, genre: Genre | None) -> SortKey:
    """Parse a cursor back into a typed sort key; anything odd is a 400 problem, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = CursorData.model_validate_json(raw)
    except ValueError:  # bad base64, bad UTF-8, bad JSON, wrong shape: all ValueErrors
        raise invalid_cursor("The cursor is not one this API issued.") from None
    if data.sort != sort or data.genre != genre:
        raise invalid_cursor("The cursor belongs to a different sort or filter.")
    field_name = sort.lstrip("-")
    if field_name == "id":
        return (data.id, data.id)
    if field_name == "title":
        return (data.value, data.id)
    try:
        price = Decimal(data.value)
    except ArithmeticError:  # decimal.InvalidOperation: not a number at all
        raise invalid_cursor("The cursor is not one this API issued.") from None
    if not price.is_finite():  # NaN would make every comparison raise
        raise invalid_cursor("The cursor is not one this API issued.")
    return (price, data.id)


def cursor_after(book: BookRecord, *, sort: Sort, genre: Genre | None) -> str:
    value = getattr(book, sort.lstrip("-"))
    text = f"{value:.2f}" if isinstance(value, Decimal) else str(value)
    return encode_cursor(CursorData(sort=sort, genre=genre, value=text, id=book.id))


# --------------------------------------------------------------------------- 5. routes

LOCATION_HEADER: Final = {
    "description": "Path of the created resource",
    "required": True,
    "schema": {"type": "string"},
}

# 400: a body that is not even text/JSON; 422: a request that fails validation.
books = APIRouter(prefix="/books", tags=["books"], responses=problems(400, 422))


@books.get("", response_model=BookPage)
async def list_books(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
    genre: Genre | None = None,
    sort: Sort = "id",
) -> BookPage:
    """Books in a stable order, one page at a time (keyset pagination)."""
    after = decode_cursor(cursor, sort=sort, genre=genre) if cursor else None
    # One extra row tells us whether another page exists, without a COUNT.
    rows = store.books.page(
        field_name=sort.lstrip("-"), descending=sort.startswith("-"), genre=genre,
        after=after, limit=limit + 1,
    )  # fmt: skip
    items = rows[:limit]
    more = len(rows) > limit
    return BookPage(
        items=[BookOut.model_validate(b) for b in items],
        next_cursor=cursor_after(items[-1], sort=sort, genre=genre) if more else None,
    )


@books.post(
    "",
    status_code=201,
    response_model=BookOut,
    responses={
        201: {"headers": {"Location": LOCATION_HEADER}},
        **problems(409),
    },
)
async def create_book(payload: BookCreate, store: StoreDep, request: Request, response: Response) -> BookOut:
    try:
        book = store.books.add(**payload.model_dump())
    except DuplicateIsbnError:
        raise ProblemError(
            409, "duplicate-isbn", "Duplicate ISBN", f"A book with ISBN {payload.isbn} exists."
        ) from None
    response.headers["Location"] = str(request.app.url_path_for("get_book", book_id=book.id))
    return BookOut.model_validate(book)


def book_or_404(store: Store, book_id: int) -> BookRecord:
    book = store.books.get(book_id)
    if book is None:
        raise ProblemError(404, "book-not-found", "Book not found", f"No book with id {book_id}.")
    return book


@books.get("/{book_id}", response_model=BookOut, responses=problems(404))
async def get_book(book_id: int, store: StoreDep) -> BookOut:
    return BookOut.model_validate(book_or_404(store, book_id))


@books.patch("/{book_id}", response_model=BookOut, responses=problems(404))
async def update_book(book_id: int, payload: BookUpdate, store: StoreDep) -> BookOut:
    book = book_or_404(store, book_id)
    # Only the keys the client sent (MISSING ones are left out): the rest stays as it is.
    for name, value in payload.model_dump().items():
        setattr(book, name, value)
    return BookOut.model_validate(book)


orders = APIRouter(prefix="/orders", tags=["orders"], responses=problems(400, 422))

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per intended order. A retry with the same key and body gets "
        "the first response again instead of ordering twice.",
    ),
]


def fingerprint(payload: OrderCreate) -> str:
    # The validated model, not the raw bytes: key order and whitespace do not make a new request.
    return hashlib.sha256(payload.model_dump_json().encode()).hexdigest()


def saved_order_response(saved: SavedResponse) -> Response:
    return JSONResponse(saved.body, status_code=201, headers={"Location": saved.location})


def price_lines(store: Store, payload: OrderCreate) -> tuple[OrderLineRecord, ...]:
    """Each line at the book's current price; the client never names a price."""
    lines = []
    for line in payload.lines:
        book = store.books.get(line.book_id)
        if book is None:
            raise ProblemError(422, "unknown-book", "Unknown book", f"No book with id {line.book_id}.")
        lines.append(OrderLineRecord(line.book_id, line.quantity, book.price))
    return tuple(lines)


@orders.post(
    "",
    status_code=201,
    response_model=OrderOut,
    responses={201: {"headers": {"Location": LOCATION_HEADER}}, **problems(409)},
)
async def create_order(
    payload: OrderCreate, idempotency_key: IdempotencyKey, store: StoreDep, request: Request
) -> Response:
    digest = fingerprint(payload)
    # From this lookup to the claim below there is no await: on one event loop nothing else
    # runs in between, so two concurrent requests cannot both find the key free. (Several
    # processes would need a shared store that refuses a duplicate key: notebook 04.)
    previous = store.idempotency.get(idempotency_key)
    if isinstance(previous, InFlight):
        raise ProblemError(
            409, "idempotency-key-in-flight", "Request still in flight",
            "A request with this Idempotency-Key is still being processed; retry later.",
        )  # fmt: skip
    if previous is not None:
        if previous.fingerprint != digest:
            raise ProblemError(
                422, "idempotency-key-reused", "Idempotency-Key reused",
                "This Idempotency-Key was already used with a different request body.",
            )  # fmt: skip
        return saved_order_response(previous)

    lines = price_lines(store, payload)  # a 422 here leaves the key untouched: retry welcome
    store.idempotency[idempotency_key] = InFlight()
    try:
        await store.payments.charge(lines_total(lines))  # the await: other requests run now
    except BaseException:
        # Failed, or cancelled because the client went away (CancelledError is not an
        # Exception): release the key, or every retry would get 409 forever.
        del store.idempotency[idempotency_key]
        raise
    order = store.orders.add(lines)
    body = OrderOut.model_validate(order).model_dump(mode="json")
    location = str(request.app.url_path_for("get_order", order_id=order.id))
    saved = SavedResponse(fingerprint=digest, location=location, body=body)
    store.idempotency[idempotency_key] = saved
    return saved_order_response(saved)


@orders.get("/{order_id}", response_model=OrderOut, responses=problems(404))
async def get_order(order_id: int, store: StoreDep) -> OrderOut:
    order = store.orders.get(order_id)
    if order is None:
        raise ProblemError(404, "order-not-found", "Order not found", f"No order with id {order_id}.")
    return OrderOut.model_validate(order)


# The version prefix lives on one router, assembled once at import; every app includes it.
v1 = APIRouter(prefix="/v1")
v1.include_router(books)
v1.include_router(orders)


def create_app(payments: PaymentGateway | None = None) -> FastAPI:
    """A new app with its own empty store: two apps never share state."""
    app = FastAPI(title="Bookstore API", version="1.0.0")
    app.state.store = Store(payments=payments if payments is not None else PaymentGateway())
    app.include_router(v1)
    install_problem_handlers(app)
    problem_openapi(app)
    return app
