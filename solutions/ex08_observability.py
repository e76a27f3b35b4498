"""Instrument the bookstore API: errors, logs, metrics and health

Reference solution. The contract is stated in ``exercises/ex08_observability.py``.
The given app (tables, domain errors, routes with their careless log calls) is the
same in both files; what this module adds lives in five places:

1. problem details: every error, domain or unexpected, leaves as RFC 9457 JSON;
2. structured logs: structlog writes one JSON object per line, with a processor
   chain that adds the request id (a contextvar) and redacts secrets;
3. metrics: RED metrics in a registry of the app's own;
4. one pure ASGI middleware, outermost among the app's middleware, that gives each
   request its id, catches what nothing else handled, counts it and logs it;
5. health: liveness that never touches the database, readiness with a deadline.

structlog rather than the standard library: its processors are plain functions over
a dict (redaction is one of them), its contextvars module is the request context,
and each app gets a logger of its own without touching global configuration.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Final, TextIO
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, Numeric, String, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "BookNotFound",
    "BookstoreError",
    "InvalidCredentials",
    "OutOfStock",
    "create_app",
    "setup_database",
]

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_BASE: Final = "https://bookstore.example/problems/"
REQUEST_ID_HEADER: Final = "X-Request-ID"
# What a client may choose as its request id: short, and nothing a log line or a header
# could be split on. Anything else gets an id of ours instead.
VALID_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNMATCHED_ROUTE: Final = "unmatched"
# Clients choose methods too: any other method is labelled "other", or each invented
# one would be a new time series.
KNOWN_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READINESS_TIMEOUT_S: Final = 0.5
REDACTED: Final = "[REDACTED]"


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


# --------------------------------------------------------------------- 1. problem details


def problem(status: int, title: str, detail: str, instance: str, type_: str = "about:blank") -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, "instance": instance}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    """Every anticipated error becomes a problem here, in one place."""

    @app.exception_handler(BookstoreError)
    async def domain_problem(request: Request, exc: BookstoreError) -> Response:
        return problem(exc.status, exc.title, exc.detail, request.url.path, PROBLEM_BASE + exc.slug)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        # Field names only: Pydantic's "input" would echo what was sent (a password, say).
        fields = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
        detail = "Invalid request: " + ", ".join(fields)
        return problem(422, "Unprocessable Content", detail, request.url.path, PROBLEM_BASE + "validation")

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        title = HTTPStatus(exc.status_code).phrase  # about:blank: the title is the status phrase
        response = problem(exc.status_code, title, str(exc.detail), request.url.path)
        response.headers.update(exc.headers or {})
        return response


def internal_error(path: str) -> JSONResponse:
    # Nothing from the exception: its text may hold hosts, SQL or credentials.
    return problem(500, "Internal Server Error", "An unexpected error occurred.", path)


# --------------------------------------------------------------------- 2. structured logs

SECRET_KEY: Final = re.compile(r"password|passwd|secret|token|authorization|cookie|api[-_]?key", re.I)
CREDENTIAL_VALUE: Final = re.compile(r"^\s*(bearer|basic)\s+\S", re.I)
URL_IN_TEXT: Final = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.I)


def redact_pairs(pairs: str) -> str:
    """``a=1&token=x`` -> ``a=1&token=[REDACTED]``, keeping the rest byte for byte."""
    kept = []
    for pair in pairs.split("&"):
        name, sep, _ = pair.partition("=")
        kept.append(f"{name}={REDACTED}" if sep and SECRET_KEY.search(name) else pair)
    return "&".join(kept)


def redact_url(match: re.Match[str]) -> str:
    parts = urlsplit(match.group(0))
    netloc = parts.netloc
    if parts.password is not None:  # https://user:secret@host
        netloc = f"{parts.username}:{REDACTED}@{netloc.rpartition('@')[2]}"
    # The fragment too: OAuth's implicit flow puts access_token there.
    return urlunsplit(
        (parts.scheme, netloc, parts.path, redact_pairs(parts.query), redact_pairs(parts.fragment))
    )


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with secrets replaced, at any depth."""
    if key and SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, Mapping):
        return {name: redact(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if isinstance(value, str):
        if CREDENTIAL_VALUE.match(value):
            return value.split()[0] + " " + REDACTED
        return URL_IN_TEXT.sub(redact_url, value)
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last step before rendering, so nothing added earlier escapes it."""
    return {name: redact(value, name) for name, value in event_dict.items()}


def make_logger(stream: TextIO) -> Any:
    """A logger of this app's own: no global structlog configuration, so apps never collide."""
    return structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[
            structlog.contextvars.merge_contextvars,  # request_id of the current request
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # exc_info -> "exception": the traceback text
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
    )


# --------------------------------------------------------------------- 3. metrics


@dataclass(frozen=True)
class HttpMetrics:
    """RED metrics: rate and errors from the counter, duration from the histogram."""

    registry: CollectorRegistry
    requests: Counter
    duration: Histogram

    @classmethod
    def create(cls) -> HttpMetrics:
        # A registry per app: the global one would refuse a second app's metrics
        # ("Duplicated timeseries") and mix the counts of every app in the process.
        registry = CollectorRegistry()
        labels = ("method", "route", "status")
        return cls(
            registry=registry,
            requests=Counter("http_requests", "HTTP requests served.", labels, registry=registry),
            duration=Histogram(
                "http_request_duration_seconds",
                "Time from request received to response sent.",
                labels,
                registry=registry,
            ),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = {
            "method": method if method in KNOWN_METHODS else "other",
            "route": route,
            "status": str(status),
        }
        self.requests.labels(**labels).inc()
        self.duration.labels(**labels).observe(seconds)  # seconds: Prometheus' base unit


# --------------------------------------------------------------------- 4. the middleware


def request_id_from(scope: Scope) -> str:
    offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if offered is not None and VALID_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """``/books/{book_id}``, never ``/books/7``: one time series per route, not per id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Request id, last-resort error handling, one access log line and the metrics.

    Pure ASGI rather than BaseHTTPMiddleware: the app runs in this task, so the
    contextvars bound here are the ones every log call of the request sees.
    """

    def __init__(self, app: ASGIApp, *, log: Any, metrics: HttpMetrics) -> None:
        self.app, self.log, self.metrics = app, log, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        # bound_contextvars resets on exit: nothing of this request outlives it.
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Logged here, once, with the traceback and the request id. Not re-raised
                # when a response can still be sent: the server would log it a second time.
                self.log.exception("unhandled exception", method=scope["method"], path=scope["path"])
                if status is not None:
                    raise  # headers already sent: only the server can end the response now
                await internal_error(scope["path"])(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                # A request cancelled before any response (the client left) is nginx's 499.
                final_status = status if status is not None else 499
                route = route_template(scope)
                self.metrics.observe(scope["method"], route, final_status, seconds)
                self.log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=final_status,
                    duration_ms=round(seconds * 1000, 3),
                )


# --------------------------------------------------------------------- 5. health


def database_answers(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def install_operations_routes(app: FastAPI, engine: Engine) -> None:
    """What the platform asks the app: is it alive, is it ready, what has it counted."""

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        # The process answers: nothing else. A database outage must not get every
        # instance restarted; that is readiness' business.
        return {"status": "alive"}

    @app.get("/health/ready")
    async def ready(request: Request) -> Response:
        try:
            with anyio.fail_after(READINESS_TIMEOUT_S):
                # The thread may stay blocked (a pool checkout, a lock) after the deadline;
                # abandoning it lets the probe answer on time. It ends when the database does.
                await anyio.to_thread.run_sync(database_answers, engine, abandon_on_cancel=True)
        except Exception as exc:  # TimeoutError, or any database error
            request.app.state.log.warning("database not ready", error=type(exc).__name__)
            return problem(503, "Service Unavailable", "The database is not available.", request.url.path)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(request_metrics(app).registry), media_type=CONTENT_TYPE_LATEST)


def request_metrics(app: FastAPI) -> HttpMetrics:
    found: HttpMetrics = app.state.metrics
    return found


def create_app(engine: Engine, *, log_stream: TextIO) -> FastAPI:
    """The bookstore API with its own logger, metrics registry and health endpoints."""
    app = FastAPI(title="Bookstore")
    app.state.engine = engine
    app.state.log = make_logger(log_stream)
    app.state.metrics = HttpMetrics.create()
    add_bookstore_routes(app)
    install_operations_routes(app, engine)
    install_problem_handlers(app)
    app.add_middleware(ObservabilityMiddleware, log=app.state.log, metrics=app.state.metrics)
    return app
