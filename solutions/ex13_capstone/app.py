"""The orders service's HTTP API: routes, problem details, authentication, pagination."""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Final, TextIO

import anyio
import httpx
from fastapi import Depends, FastAPI, Form, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from .auth import InvalidToken, LoginLimiter, decode_token, issue_token, verify_password
from .database import open_engine
from .models import (
    PROBLEM_JSON,
    BookPage,
    OrderIn,
    OrderOut,
    OrderPage,
    OutOfStock,
    PaymentDeclined,
    PaymentUnavailable,
    Principal,
    Problem,
    TokenOut,
    UnknownBook,
)
from .observability import JsonLogger, Metrics, ObservabilityMiddleware
from .payments import PaymentClient
from .repository import Repository
from .settings import Settings

__all__ = ["create_app"]

MAX_ID: Final = 2_147_483_647
READINESS_TIMEOUT_S: Final = 1.0


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def problem(status: int, detail: str, instance: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=instance)
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.detail, request.url.path, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, detail, request.url.path, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return problem(422, detail, request.url.path)


# ------------------------------------------------------------------------------- cursors


def encode_cursor(kind: str, last_id: int) -> str:
    raw = json.dumps({"k": kind, "id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        last_id = data["id"]
        if data["k"] != kind or not isinstance(last_id, int) or not 0 < last_id <= MAX_ID:
            raise ValueError
        return last_id
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ProblemError(400, "cursor is not one this endpoint issued") from None


# ---------------------------------------------------------------------------- dependencies

bearer = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)


def unauthorized() -> ProblemError:
    return ProblemError(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request, token: Annotated[str | None, Depends(bearer)]) -> Principal:
    if token is None:
        raise unauthorized()
    try:
        return decode_token(request.app.state.settings, token)
    except InvalidToken:
        raise unauthorized() from None


async def current_customer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role != "customer":
        raise ProblemError(403, "only customers place orders")
    return principal


async def current_staff(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role != "staff":
        raise ProblemError(403, "this action needs the staff role")
    return principal


def repository(request: Request) -> Repository:
    found: Repository = request.app.state.repository
    return found


PrincipalDep = Annotated[Principal, Depends(current_principal)]
RepositoryDep = Annotated[Repository, Depends(repository)]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
Cursor = Annotated[str | None, Query(max_length=200)]


def page_limit(request: Request, limit: Annotated[int | None, Query(ge=1)] = None) -> int:
    settings: Settings = request.app.state.settings
    if limit is None:
        return settings.page_default
    if limit > settings.page_max:
        raise ProblemError(422, f"limit: at most {settings.page_max}")
    return limit


LimitDep = Annotated[int, Depends(page_limit)]


# ---------------------------------------------------------------------------------- routes


def add_routes(app: FastAPI) -> None:
    @app.post("/token", response_model=TokenOut)
    async def login(
        request: Request,
        username: Annotated[str, Form(max_length=40)],
        password: Annotated[str, Form(max_length=200)],
        repo: RepositoryDep,
    ) -> TokenOut:
        settings: Settings = request.app.state.settings
        limiter: LoginLimiter = request.app.state.login_limiter
        key = username.strip().lower()
        wait = limiter.retry_after(key)
        if wait is not None:
            request.app.state.log.warning("login_limited", username=key)
            raise ProblemError(429, "too many failed logins; try again later", {"Retry-After": str(wait)})
        user = await repo.find_user(username)
        # argon2 costs milliseconds of CPU: off the event loop, so other requests go on.
        matches = await anyio.to_thread.run_sync(
            verify_password, settings, password, None if user is None else user.password_hash
        )
        if user is None or not matches:
            limiter.failed(key)
            request.app.state.log.warning("login_failed", username=key)
            # One answer for "no such user" and "wrong password": no enumeration.
            raise ProblemError(401, "incorrect username or password", {"WWW-Authenticate": "Bearer"})
        limiter.succeeded(key)
        principal = Principal(user_id=user.id, role=user.role)
        return TokenOut(access_token=issue_token(settings, principal))

    @app.get("/books", response_model=BookPage)
    async def list_books(repo: RepositoryDep, limit: LimitDep, cursor: Cursor = None) -> BookPage:
        books = await repo.list_books(after=decode_cursor("books", cursor), limit=limit + 1)
        more = len(books) > limit
        books = books[:limit]
        return BookPage(items=books, next_cursor=encode_cursor("books", books[-1].id) if more else None)

    @app.post("/orders", status_code=201, response_model=OrderOut)
    async def place_order(
        payload: OrderIn,
        request: Request,
        response: Response,
        customer: Annotated[Principal, Depends(current_customer)],
        repo: RepositoryDep,
    ) -> OrderOut:
        try:
            order = await repo.place_order(customer.user_id, payload.lines)
        except OutOfStock as exc:
            detail = f"book {exc.book_id}: {exc.available} left, {exc.requested} wanted"
            raise ProblemError(409, detail) from None
        except UnknownBook as exc:
            raise ProblemError(422, f"lines: book {exc.book_id} does not exist") from None
        payments: PaymentClient = request.app.state.payments
        try:
            await payments.charge(order.id, order.total)
        except (PaymentDeclined, PaymentUnavailable) as exc:
            # The order did not happen: its copies go back on the shelf.
            await repo.change_status(order.id, "placed", "cancelled")
            request.app.state.log.warning("order_cancelled", order_id=order.id, reason=type(exc).__name__)
            if isinstance(exc, PaymentDeclined):
                raise ProblemError(402, "the payment was declined; the order was cancelled") from None
            wait = max(1, math.ceil(payments.breaker.retry_after()))
            raise ProblemError(
                503, "payment is unavailable; the order was cancelled", {"Retry-After": str(wait)}
            ) from None
        paid = await repo.change_status(order.id, "placed", "paid")
        assert paid is not None
        request.app.state.metrics.orders_placed.inc()
        request.app.state.log.info("order_placed", order_id=paid.id, customer_id=paid.customer_id,
                                   total=f"{paid.total:.2f}")  # fmt: skip
        response.headers["Location"] = f"/orders/{paid.id}"
        return paid

    @app.get("/orders", response_model=OrderPage)
    async def list_orders(principal: PrincipalDep, repo: RepositoryDep, limit: LimitDep,
                          cursor: Cursor = None) -> OrderPage:  # fmt: skip
        # Staff see every order; a customer only their own (the filter is the authorization).
        owner = None if principal.role == "staff" else principal.user_id
        orders = await repo.list_orders(owner, before=decode_cursor("orders", cursor), limit=limit + 1)
        more = len(orders) > limit
        orders = orders[:limit]
        return OrderPage(items=orders, next_cursor=encode_cursor("orders", orders[-1].id) if more else None)

    @app.get("/orders/{order_id}", response_model=OrderOut)
    async def get_order(order_id: OrderId, principal: PrincipalDep, repo: RepositoryDep) -> OrderOut:
        order = await repo.get_order(order_id)
        # Someone else's order is "not found", not "forbidden": its existence is not ours to reveal.
        if order is None or (principal.role != "staff" and order.customer_id != principal.user_id):
            raise ProblemError(404, f"no order {order_id}")
        return order

    @app.post("/orders/{order_id}/ship", response_model=OrderOut)
    async def ship_order(
        order_id: OrderId, staff: Annotated[Principal, Depends(current_staff)], repo: RepositoryDep
    ) -> OrderOut:
        shipped = await repo.change_status(order_id, "paid", "shipped")
        if shipped is not None:
            return shipped
        if await repo.get_order(order_id) is None:
            raise ProblemError(404, f"no order {order_id}")
        raise ProblemError(409, f"order {order_id} is not paid, so it cannot ship")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}  # the process answers; the database is readiness' business

    @app.get("/health/ready")
    async def ready(request: Request) -> Response:
        try:
            with anyio.fail_after(READINESS_TIMEOUT_S):
                async with request.app.state.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as exc:  # a timeout or any database error: not ready
            request.app.state.log.warning("not_ready", error=type(exc).__name__)
            return problem(503, "the database is not available", request.url.path)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(
    settings: Settings,
    *,
    payments: httpx.AsyncBaseTransport | None = None,
    log_stream: TextIO | None = None,
) -> FastAPI:
    """The orders service for the prepared database ``settings.database``.

    ``payments``: how to reach the payment service (e.g. a fake's transport);
    ``log_stream``: where the JSON log lines go (standard error by default).
    """
    engine = open_engine(settings)
    log = JsonLogger(log_stream or sys.stderr)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.payments = PaymentClient(settings, payments, metrics=metrics, log=log)
        try:
            yield
        finally:
            await app.state.payments.aclose()
            await engine.dispose()

    app = FastAPI(title="Bookstore orders", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.repository = Repository(async_sessionmaker(engine, expire_on_commit=False))
    app.state.login_limiter = LoginLimiter(settings.login_attempts, settings.login_window_s)
    app.state.log = log
    app.state.metrics = metrics
    add_routes(app)
    install_problem_handlers(app)
    app.add_middleware(ObservabilityMiddleware, log=log, metrics=metrics)
    return app
