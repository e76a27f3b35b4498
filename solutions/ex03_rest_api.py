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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Final, Literal, get_args

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.config import JsonDict
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
MAX_ORDER_LINES: Final = 50
MAX_INSTANCE_LENGTH: Final = 2048  # longer request paths are not echoed in problems
# Room for the longest cursor this API issues, with margin: a 200-character title is at
# most 1,200 bytes as Pydantic writes JSON (control characters become \uXXXX; json.dumps
# would write an emoji as two such escapes, 2,400 bytes) and base64 adds a third. A cap
# below that would reject the API's own cursors.
MAX_CURSOR_LENGTH: Final = 4096
# Internal business rule: what the store pays the publisher, as a share of the price.
COST_SHARE: Final = Decimal("0.60")
# OWASP API4:2023 asks every integer in the contract to state its width and range, so that
# clients, code generators and fuzzers know the bounds the server enforces.
INT32: Final[JsonDict] = {"format": "int32"}


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
IsbnText = Annotated[str, StringConstraints(min_length=13, max_length=13, pattern=r"^[0-9]{13}$")]
Isbn = Annotated[IsbnText, AfterValidator(check_isbn13)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Id = Annotated[int, Field(ge=1, le=MAX_ID, json_schema_extra=INT32)]
Quantity = Annotated[int, Field(ge=1, le=100, json_schema_extra=INT32)]
PRICE_TEXT: Final = r"^[0-9]{1,6}(\.[0-9]{1,2})?$"


def plain_price_text(value: object) -> object:
    # Decimal alone would also take "1E+2", " 7" or "0000012.50": a string price must look
    # like the one the contract documents, so the schema below tells clients the truth.
    if isinstance(value, str) and re.fullmatch(PRICE_TEXT, value) is None:
        raise ValueError("a price given as a string is digits with at most two decimals, like '12.50'")
    return value


# le= puts the cap in the OpenAPI schema as a maximum; max_digits alone would not show it.
# The schema is written out because Pydantic documents a Decimal's string form unbounded.
PriceIn = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("999999.99"), max_digits=8, decimal_places=2),
    BeforeValidator(plain_price_text),
    AfterValidator(normalise_price),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 999999.99},
                {"type": "string", "pattern": PRICE_TEXT, "maxLength": 9},
            ],
            "examples": ["12.50"],
        },
        mode="validation",
    ),
]
# Money goes out as a string with exactly two decimals: JSON numbers are floats to most clients.
# 16 characters hold the largest order total (50 lines x 100 copies x 999,999.99).
Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "maxLength": 16, "examples": ["12.50"]}
    ),
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

    id: Id
    isbn: IsbnText
    title: Title
    author: Author
    genre: Genre
    price: Money


class BookPage(BaseModel):
    items: list[BookOut] = Field(max_length=100)  # at most ?limit= items, and limit <= 100
    next_cursor: Annotated[str, StringConstraints(max_length=MAX_CURSOR_LENGTH)] | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    book_id: Id
    quantity: Quantity


class OrderCreate(BaseModel):
    """POST body. No prices or totals: the server computes them (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    # max_length bounds the work one request can cause (OWASP API4:2023): a 10,000-line
    # order is refused by validation, before a single book is looked up or charged.
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_ORDER_LINES)

    @field_validator("lines")
    @classmethod
    def one_line_per_book(cls, lines: list[OrderLineIn]) -> list[OrderLineIn]:
        book_ids = [line.book_id for line in lines]
        if len(set(book_ids)) != len(book_ids):
            raise ValueError("each book_id may appear only once")
        return lines


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    book_id: Id
    quantity: Quantity
    unit_price: Money


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: Id
    lines: list[OrderLineOut] = Field(max_length=MAX_ORDER_LINES)
    total: Money


# --------------------------------------------------------------------------- 3. problems

VALIDATION_PROBLEM: Final = PROBLEM_BASE + "validation-error"
# RFC 9110 renamed these two; Python 3.11's http.HTTPStatus still has the old phrases.
RFC9110_PHRASES: Final = {413: "Content Too Large", 422: "Unprocessable Content"}


def reason_phrase(status: int) -> str:
    return RFC9110_PHRASES.get(status) or HTTPStatus(status).phrase


# Errors are bounded like everything else: a body with thousands of bad fields, or a key
# of a megabyte, must not turn into an error response of the same size.
MAX_REPORTED_ERRORS: Final = 100
MAX_TEXT: Final = 1000
LocPart = (
    Annotated[str, StringConstraints(max_length=MAX_TEXT)]
    | Annotated[int, Field(ge=0, le=MAX_ID, json_schema_extra=INT32)]
)


class FieldError(BaseModel):
    loc: list[LocPart] = Field(max_length=16)
    msg: Annotated[str, StringConstraints(max_length=MAX_TEXT)]
    type: Annotated[str, StringConstraints(max_length=100)]


class Problem(BaseModel):
    """RFC 9457 problem details: the one shape of every error this API returns."""

    type: Annotated[str, StringConstraints(max_length=200)] = "about:blank"
    title: Annotated[str, StringConstraints(max_length=100)]
    status: int = Field(ge=400, le=599, json_schema_extra=INT32)
    detail: Annotated[str, StringConstraints(max_length=MAX_TEXT)]
    # The request path; left out (RFC 9457 makes it optional) when it is too long to echo.
    instance: Annotated[str, StringConstraints(max_length=MAX_INSTANCE_LENGTH)] | SkipJsonSchema[None] = None
    # Extension member of the validation-error type only (about:blank defines no extensions).
    errors: Annotated[list[FieldError], Field(max_length=MAX_REPORTED_ERRORS)] | SkipJsonSchema[None] = None


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
    path = request.url.path
    problem = Problem(
        type=type_, title=title or reason_phrase(status), status=status, detail=detail,
        instance=path if len(path) <= MAX_INSTANCE_LENGTH else None, errors=errors,
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
        found = exc.errors()
        errors = [
            FieldError(
                loc=[part if isinstance(part, int) else clip(str(part)) for part in e["loc"]][:16],
                msg=clip(str(e["msg"])),
                type=clip(str(e["type"]), 100),
            )
            for e in found[:MAX_REPORTED_ERRORS]
        ]
        shown = "" if len(found) <= MAX_REPORTED_ERRORS else f", the first {MAX_REPORTED_ERRORS} shown"
        detail = f"The request is invalid: {len(found)} error(s){shown}, see 'errors'."
        # A type of our own, not about:blank: it is the type that defines the errors member.
        return problem_response(
            request, 422, detail, type_=VALIDATION_PROBLEM, title=reason_phrase(422), errors=errors
        )

    @app.exception_handler(Exception)
    async def server_problem(request: Request, exc: Exception) -> Response:
        # No exception text: internals (SQL, paths) are for the logs, not for clients.
        return problem_response(request, 500, "An unexpected error occurred.")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """At most ``limit`` characters: a client's key names end up in error locations."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


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
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                contact=app.contact, servers=app.servers, tags=app.openapi_tags, routes=app.routes,
            )  # fmt: skip
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
    "schema": {"type": "string", "maxLength": 64, "pattern": r"^/v1/(books|orders)/[0-9]+$"},
}
# Out of range is a 422 before the route runs, and the contract says so (OWASP API4:2023).
BookId = Annotated[int, Path(ge=1, le=MAX_ID, json_schema_extra=INT32)]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, json_schema_extra=INT32)]

# 400: a body that is not even text/JSON; 422: a request that fails validation.
books = APIRouter(prefix="/books", tags=["books"], responses=problems(400, 422, 500))


@books.get("", response_model=BookPage)
async def list_books(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100, json_schema_extra=INT32)] = 20,
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
    """Add a book; its ISBN must be new. Answers 201 with a Location header."""
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
async def get_book(book_id: BookId, store: StoreDep) -> BookOut:
    """One book by id."""
    return BookOut.model_validate(book_or_404(store, book_id))


@books.patch("/{book_id}", response_model=BookOut, responses=problems(404))
async def update_book(book_id: BookId, payload: BookUpdate, store: StoreDep) -> BookOut:
    """Change the fields sent (JSON merge semantics); omitted fields keep their values."""
    book = book_or_404(store, book_id)
    # Only the keys the client sent (MISSING ones are left out): the rest stays as it is.
    for name, value in payload.model_dump().items():
        setattr(book, name, value)
    return BookOut.model_validate(book)


orders = APIRouter(prefix="/orders", tags=["orders"], responses=problems(400, 422, 500))

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
    """Place an order at today's prices. A retry with the same Idempotency-Key replays it."""
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
async def get_order(order_id: OrderId, store: StoreDep) -> OrderOut:
    """One order by id."""
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
    app = FastAPI(
        title="Bookstore API",
        version="1.0.0",
        description="Catalog and orders of the course's bookstore. Every error is an RFC 9457 "
        "problem (application/problem+json).",
        contact={"name": "Bookstore API team", "url": "https://bookstore.example/api"},
        # x-internal: false says this document is meant for the public (OWASP API9:2023).
        servers=[{"url": "https://api.bookstore.example", "description": "production", "x-internal": False}],
        openapi_tags=[
            {"name": "books", "description": "The catalog: list, read, add and edit books."},
            {"name": "orders", "description": "Place orders (idempotently) and read them back."},
        ],
    )
    app.state.store = Store(payments=payments if payments is not None else PaymentGateway())
    app.include_router(v1)
    install_problem_handlers(app)
    problem_openapi(app)
    return app
