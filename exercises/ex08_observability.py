"""Instrument the bookstore API: errors, logs, metrics and health

The bookstore API below works, but nobody can operate it: its errors are
tracebacks or framework defaults, its log is free text with passwords in it, it
has no metrics and no health endpoints. Instrument it. This docstring is the
contract: ``tests/exercises/test_ex08_observability.py`` checks it, one test
class per task. ``check("ex08")`` shows which tasks pass; ``hint("ex08")`` helps
with the first open one.

The app is given: its table, its domain errors and its routes, log calls
included. Keep the routes' log calls (another team wrote them, and more will
follow); what they log is yours to make safe. Everything else here may change.

create_app(engine, *, log_stream) -> FastAPI
    A new app on ``engine`` (a synchronous SQLAlchemy engine whose table
    ``setup_database`` created). Every log line the app writes goes to
    ``log_stream`` (a text stream). The tests create several apps in one
    process, on one engine, and talk to them through httpx's ASGITransport
    (which sends no lifespan events): two apps never share a log stream or a
    metric. The given code logs through ``app.state.log`` with structlog's
    keyword API (``log.info("event", key=value, ...)``).

Task 1 · Problems: every anticipated error is a problem-details response
    Content-Type ``application/problem+json``; body (RFC 9457) with ``type``,
    ``title``, ``status`` (= the HTTP status), ``detail`` and ``instance`` (the
    request path). A BookstoreError gives its class's ``status`` and ``title``,
    type ``https://bookstore.example/problems/<slug>`` and its ``detail``. An
    invalid request is a 422 problem that never repeats the values sent (a
    rejected password included); a path no route serves is a 404 problem.

Task 2 · Unexpected errors
    Any other exception (try GET /reports/sales) gives a 500 problem whose body
    says nothing about the failure: no exception text, type or traceback (its
    message names internal hosts). The traceback goes to the log as text, the
    way Python prints it ("Traceback (most recent call last): ..."), exactly
    once, on a line that carries the request's id; the response still carries
    the X-Request-ID header. Starlette's ServerErrorMiddleware, the outermost layer
    of every app, sends its own 500 and then re-raises the exception (so that
    servers log it; httpx's ASGITransport re-raises it into the caller unless
    created with ``raise_app_exceptions=False``).

Task 3 · Request logs
    Every log line is one JSON object. Every line written while a request is
    handled has ``request_id``. Each request ends with exactly one access line:
    ``event`` "request", ``request_id``, ``method``, ``route``, ``status`` (int),
    ``duration_ms`` (number: from request received to response sent).
    - ``route`` is the matched route's template ("/books/{book_id}", never
      "/books/7"); "unmatched" when no route matched the path.
    - The request id is the client's ``X-Request-ID`` when it has 1-64
      characters, all of ``A-Z a-z 0-9 . _ -``; otherwise (missing, too long,
      other characters) a new unique id of such characters. The response carries
      it in ``X-Request-ID``. A rejected value never reaches the log.
    - Requests are concurrent: the app serves many at once on one event loop,
      and sync routes run in a thread pool. Each line carries its own request's
      id, never another's.

Task 4 · Redaction: no secret reaches the log, wherever it hides
    A value is a secret when its key contains (any case) ``password``,
    ``passwd``, ``secret``, ``token``, ``authorization``, ``cookie`` or
    ``api_key``/``api-key``/``apikey``, at any depth of dicts and lists; when it is
    a string starting with ``Bearer `` or ``Basic `` (a credential, whatever its
    key); the value of a query or fragment parameter with such a name in a URL
    inside a string; and the password of a URL (``https://user:pw@host``). A
    secret is replaced by "[REDACTED]"; everything else of the line stays
    (usernames, ids, the rest of a URL).

Task 5 · Metrics: RED, on GET /metrics (Prometheus text format)
    - ``http_requests_total``: a counter, labels ``method`` (the request's method
      when it is GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, otherwise "other":
      clients choose methods too), ``route`` (as in the access line: the
      template, or "unmatched") and ``status`` (e.g. "404");
    - ``http_request_duration_seconds``: a histogram with the same labels, in
      seconds (Prometheus' base unit).
    Every request is counted once, with its final status, once it is answered
    (errors and 500s included). A scrape shows every request answered before it,
    not itself. Each app counts only its own requests; prometheus_client's
    default registry is one per process.

Task 6 · Health: liveness and readiness
    - GET /health/live -> 200 whenever the process can answer; it never uses the
      database (a database outage must not get every instance restarted).
    - GET /health/ready -> 200 when the database answers a query, otherwise a 503
      problem that names no driver, host or error text. It answers within 1 s
      whatever the database does: refusing connections, or never answering
      (every pooled connection busy; the pool then waits 30 s for one). Readiness
      is 200 again as soon as the database is back.
"""

from __future__ import annotations

import hmac
import secrets
from decimal import Decimal
from typing import Annotated, Any, Final, TextIO

import structlog
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, Numeric, String, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = [
    "BookNotFound",
    "BookstoreError",
    "InvalidCredentials",
    "OutOfStock",
    "create_app",
    "setup_database",
]


# --------------------------------------------------------------------- the given app: data


class Base(DeclarativeBase):
    pass


class BookRow(Base):
    __tablename__ = "ex08_books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]


SEED_BOOKS: Final = (
    (1, "Dune", Decimal("9.99"), 5),
    (2, "Solaris", Decimal("12.50"), 0),
    (3, "Kindred", Decimal("8.75"), 2),
)


def setup_database(engine: Engine) -> None:
    """(Re)create the app's table with three books: 1 in stock (5), 2 sold out, 3 with 2 left."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add_all(BookRow(id=i, title=t, price=p, stock=s) for i, t, p, s in SEED_BOOKS)


# --------------------------------------------------------------------- the given app: errors


class BookstoreError(Exception):
    """A failure the client can act on. Each subclass names its HTTP status and problem type."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BookNotFound(BookstoreError):
    status, slug, title = 404, "book-not-found", "Book not found"


class OutOfStock(BookstoreError):
    status, slug, title = 409, "out-of-stock", "Out of stock"


class InvalidCredentials(BookstoreError):
    status, slug, title = 401, "invalid-credentials", "Invalid credentials"


# --------------------------------------------------------------------- the given app: routes


class BookOut(BaseModel):
    id: int
    title: str
    price: Decimal


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    book_id: int = Field(ge=1)
    quantity: int = Field(ge=1, le=10)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=200)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str = Field(min_length=8, max_length=2000)


# The one account of this toy app. Notebook 06 stores argon2 hashes; here the point is
# what reaches the logs.
ACCOUNTS: Final = {"ada": "correct horse battery staple"}


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_log(request: Request) -> Any:
    return request.app.state.log


EngineDep = Annotated[Engine, Depends(get_engine)]
LogDep = Annotated[Any, Depends(get_log)]


def get_book(book_id: int, engine: EngineDep, log: LogDep) -> BookOut:
    with Session(engine) as session:
        row = session.get(BookRow, book_id)
    if row is None:
        raise BookNotFound(f"No book with id {book_id}.")
    log.info("book viewed", book_id=book_id)
    return BookOut(id=row.id, title=row.title, price=row.price)


def place_order(order: OrderIn, engine: EngineDep, log: LogDep) -> dict[str, int]:
    with Session(engine) as session, session.begin():
        if session.get(BookRow, order.book_id) is None:
            raise BookNotFound(f"No book with id {order.book_id}.")
        # One atomic statement: two concurrent orders cannot both take the last copy.
        taken = session.scalar(
            update(BookRow)
            .where(BookRow.id == order.book_id, BookRow.stock >= order.quantity)
            .values(stock=BookRow.stock - order.quantity)
            .returning(BookRow.id)
        )
        if taken is None:
            raise OutOfStock(f"Fewer than {order.quantity} copies of book {order.book_id} are left.")
    log.info("order placed", book_id=order.book_id, quantity=order.quantity)
    return {"book_id": order.book_id, "quantity": order.quantity}


def login(payload: LoginIn, request: Request, log: LogDep) -> dict[str, str]:
    # Careless, like much code in the wild: the whole body and every header.
    log.info("login attempt", payload=payload.model_dump(), headers=dict(request.headers))
    expected = ACCOUNTS.get(payload.username, "")
    if not hmac.compare_digest(payload.password.encode(), expected.encode()) or not expected:
        raise InvalidCredentials("Unknown user or wrong password.")
    token = secrets.token_urlsafe(24)
    log.info("login succeeded", user=payload.username, session={"access_token": token, "ttl": 3600})
    return {"access_token": token, "token_type": "bearer"}


def subscribe(payload: SubscriptionIn, request: Request, log: LogDep) -> dict[str, str]:
    log.info(
        "subscription created",
        callback_url=payload.callback_url,
        credentials=request.headers.get("authorization"),
    )
    return {"callback_url": "registered"}


def sales_report(engine: EngineDep) -> dict[str, Any]:
    with Session(engine) as session:
        titles = session.scalars(select(BookRow.title)).all()
    # A bug waiting for production: an internal detail in the exception's text.
    raise RuntimeError(f"report cache at 10.0.3.7:6379 refused AUTH for user 'reports' ({len(titles)})")


def add_bookstore_routes(app: FastAPI) -> None:
    app.add_api_route("/books/{book_id}", get_book, methods=["GET"])
    app.add_api_route("/orders", place_order, methods=["POST"], status_code=201)
    app.add_api_route("/login", login, methods=["POST"])
    app.add_api_route("/subscriptions", subscribe, methods=["POST"], status_code=201)
    app.add_api_route("/reports/sales", sales_report, methods=["GET"])


# --------------------------------------------------------------------- your instrumentation


def create_app(engine: Engine, *, log_stream: TextIO) -> FastAPI:
    """The bookstore API; so far with a plain-text log and nothing else (Tasks 1-6)."""
    app = FastAPI(title="Bookstore")
    app.state.engine = engine
    app.state.log = structlog.wrap_logger(
        structlog.PrintLogger(log_stream), processors=[structlog.processors.KeyValueRenderer()]
    )
    add_bookstore_routes(app)
    return app
