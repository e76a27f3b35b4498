"""Secure the bookstore API

The bookstore's customer API below works: customers log in, refresh their tokens,
place, read, change and search their orders; admins list users. It was written
in a hurry and an attack suite (``tests/exercises/test_ex06_auth_security.py``)
breaks into it in many ways. Make every attack fail while every legitimate flow
keeps working. This docstring is the contract; ``check("ex06")`` shows which
tasks hold, ``hint("ex06")`` helps with the first open one.

create_app(engine, settings) -> FastAPI
    A new app over ``engine`` (an AsyncEngine whose tables ``create_schema`` made)
    configured by ``settings`` (see Settings). Users are added with ``add_user``,
    books with ``add_book``. Tests talk to the app in process through httpx and
    run its lifespan (``app.router.lifespan_context``); anything the app opens,
    it closes there.

Access tokens (what the app issues now, and what a valid token is)
    A JWT signed with RS256 by ``settings.signing_key``, with the claims ``iss``
    (settings.issuer), ``aud`` (settings.audience), ``sub`` (the user's id, a
    string), ``iat``, ``exp`` (iat + settings.access_ttl_s), ``jti`` (unique) and
    ``scope``: "orders" for customers, "orders admin" for admins. Clients send it
    as ``Authorization: Bearer <token>``. The tests also sign such tokens
    themselves with the same key: a token like that is valid and must keep working.

Errors are RFC 9457 problem details (``application/problem+json``), as in
notebook 03; the given handlers produce them from ``ProblemError``. No error
response shows a stack trace or exception text, and none helps an attacker: the
body of a refused token is the same, word for word, whatever was wrong with it.

Task 1 · Passwords
    POST /v1/auth/token (OAuth2 password flow: a form with ``username``, at most 64
    characters, and ``password``, at most 256) -> 200 {"access_token", "refresh_token",
    "token_type": "bearer", "expires_in"}.
    - ``add_user`` stores a salted argon2id hash with the cost in ``settings``
      (argon2_time_cost, argon2_memory_kib, argon2_parallelism). The defaults are
      the production cost; tests use cheap parameters so they run fast.
    - When the cost configured in ``settings`` differs from the one a stored hash
      was made with, a successful login stores a new hash with today's cost.
    - An unknown username and a wrong password get the same 401 problem (status,
      headers and body), and take about the same time: argon2 is slow on purpose,
      so an answer that skips it tells an attacker the name does not exist.

Task 2 · Access tokens
    Every route except the two under /v1/auth needs a valid access token; anything
    else is a 401 problem with ``WWW-Authenticate: Bearer``. The algorithm a token's
    header names is the attacker's choice: "none", an HMAC signed with the
    server's public key (that key is public: anyone can have it), another key, an
    edited payload, a missing or past ``exp``, another ``aud`` or ``iss``, or a
    ``sub`` that is not one of our user ids all make the token invalid. A
    malformed token is a 401 too, never a 500.

Task 3 · Refresh tokens
    POST /v1/auth/refresh {"refresh_token": str, at most 256 characters} -> 200 with a
    new pair. A refresh token works once: the answer carries its successor. A refresh
    token presented a second time means it was copied; the app cannot tell the
    thief from the owner, so that token and every token descended from the same
    login (its family) stop working: 401. Other logins of the same user are not
    affected. However many requests with one refresh token arrive at once, at most
    one succeeds. Refresh tokens are stored only as hashes (a leaked table holds
    no live token).

Task 4 · Authorization: functions, objects, properties
    - GET /v1/admin/users?limit=1..100 -> {"items": [user, ...]} for tokens with the
      admin scope; a customer's token -> 403 problem.
    - Orders belong to the customer who placed them. POST /v1/orders {"book_id",
      "quantity" 1-100, "note" at most 200 characters} -> 201 order with Location
      /v1/orders/{id} (ids are UUIDs); the unit price is the book's price. GET and
      PATCH /v1/orders/{order_id} ({"note"}) work on the caller's own orders; for
      anyone else's order the answer is the 404 problem a non-existent order gets
      (a 403 would confirm the order exists).
    - Representations: a user is exactly {"username", "display_name", "role"}; an
      order exactly {"id", "book_id", "quantity", "unit_price" ("12.50"), "note"}.
    - GET/PATCH /v1/users/me: PATCH changes ``display_name`` (1-100 characters) only.
      A body naming any field the client may not set (role, unit_price,
      customer_id, id, ...) is a 422 problem and changes nothing.

Task 5 · Search
    GET /v1/orders?search=&limit= -> {"items": [...]} the caller's orders whose note
    contains ``search`` (at most 100 characters) as plain text: %, _, quotes and
    backslashes match themselves. Whatever the search says, it is never SQL.

Task 6 · Login rate limits
    ``RateLimiter(limit, window_s, redis_url, prefix)``: ``await hit(key)`` counts
    one attempt and returns 0.0 while the key has had at most ``limit`` hits in the
    last ``window_s`` seconds (a sliding window), else the seconds until the next
    hit would be allowed (> 0). ``redis_url`` None: the counts live in this process.
    A Redis URL: they live in Redis under keys starting with ``prefix``, and any
    number of processes sharing one limit are allowed exactly ``limit`` hits in
    total. ``await aclose()`` releases what the limiter holds.
    Login attempts are limited per username (login_limit_per_user, from any
    client) and per client address (login_limit_per_client, over any usernames),
    both in login_window_s, in Redis when settings.redis_url is set (keys under
    settings.redis_prefix). Over a limit -> 429 problem with ``Retry-After`` (whole
    seconds, at least 1), even for the right password.
    Every request, on any route, also counts against its client address's limit
    (request_limit_per_client in request_window_s): over it -> the same kind of 429.
    Every answer carries ``RateLimit-Limit`` (that limit) and ``RateLimit-Reset``
    (whole seconds within which the client's full quota is back, at most the window).
    Browsers may call the API only from settings.cors_origins.

Task 7 · The OpenAPI document
    Declares the OAuth2 password flow (token URL /v1/auth/token, refresh URL
    /v1/auth/refresh) as the security of every operation outside /v1/auth, and
    states that those two need no credentials; the statuses each operation can
    answer (400 for an unparsable body, 401, 403 on order and admin routes, 404 on
    one order, 422, 429 with Retry-After everywhere) as application/problem+json; the
    RateLimit headers on every answer; and every limit above (maxLength,
    minimum/maximum with an integer format, UUID path ids) for clients and fuzzers.
    A schemathesis run finds no 5xx and no answer the document does not describe,
    and Spectral's OWASP API Security ruleset reports no error (a deep test runs it
    once ``make spectral`` has installed Spectral).
"""

import functools
import hashlib
import hmac
import json
import time
import uuid
from base64 import urlsafe_b64decode
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Final

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from fastapi import APIRouter, Body, FastAPI, Form, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import ForeignKey, Numeric, String, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["RateLimiter", "Settings", "add_book", "add_user", "create_app", "create_schema"]

PROBLEM_JSON: Final = "application/problem+json"
VALIDATION_PROBLEM: Final = "https://bookstore.example/problems/validation-error"
ROLES: Final = ("customer", "admin")
ROLE_SCOPES: Final = {"customer": ("orders",), "admin": ("orders", "admin")}


# --------------------------------------------------------------------------- given


@dataclass(frozen=True)
class Settings:
    """Everything an app instance is configured with (given).

    ``signing_key`` is an RSA private key in PEM; its public half verifies tokens.
    The argon2 defaults are pwdlib's (argon2-cffi's RFC 9106 low-memory profile).
    """

    signing_key: str
    issuer: str = "https://bookstore.example"
    audience: str = "bookstore-api"
    access_ttl_s: int = 300
    refresh_ttl_s: int = 14 * 24 * 3600
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    login_limit_per_user: int = 5
    login_limit_per_client: int = 20
    login_window_s: float = 60.0
    request_limit_per_client: int = 300
    request_window_s: float = 60.0
    cors_origins: tuple[str, ...] = ("https://bookstore.example",)
    redis_url: str | None = None
    redis_prefix: str = "ex06"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    note: Mapped[str] = mapped_column(String(200), default="")


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[float]  # Unix time: no time-zone handling differs between databases
    used: Mapped[bool] = mapped_column(default=False)
    revoked: Mapped[bool] = mapped_column(default=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Create the tables (given). Call once on an empty database."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)


async def add_book(engine: AsyncEngine, title: str, price: str) -> int:
    """Store a book (given); returns its id."""
    async with AsyncSession(engine) as session, session.begin():
        book = Book(title=title, price=Decimal(price))
        session.add(book)
        await session.flush()
        return book.id


class ProblemError(Exception):
    """Raise anywhere; the handler answers an RFC 9457 problem (given)."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, dict(headers or {})


def problem_response(
    request: Request, status: int, detail: str, *, headers: Mapping[str, str] | None = None,
    type_: str = "about:blank", errors: list[dict[str, Any]] | None = None,
) -> Response:  # fmt: skip
    title = "Unprocessable Content" if status == 422 else HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": type_, "title": title, "status": status, "detail": detail, "instance": request.url.path,
    }  # fmt: skip
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error becomes a problem (given)."""

    @app.exception_handler(ProblemError)
    async def own_problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(request, exc.status, exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        return problem_response(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": str(e["msg"]), "type": str(e["type"])} for e in exc.errors()]
        detail = f"The request is invalid: {len(errors)} error(s), see 'errors'."
        return problem_response(request, 422, detail, type_=VALIDATION_PROBLEM, errors=errors)

    @app.exception_handler(Exception)
    async def server_problem(request: Request, exc: Exception) -> Response:
        return problem_response(request, 500, "An unexpected error occurred.")


# --------------------------------------------------------------------------- the app as provided


async def add_user(
    engine: AsyncEngine, settings: Settings, username: str, password: str, role: str = "customer"
) -> int:
    """Store a user whose password only the app's login can check; returns the user's id."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    async with AsyncSession(engine) as session, session.begin():
        user = User(
            username=username, display_name=username, role=role,
            password_hash=hashlib.sha256(password.encode()).hexdigest(),
        )  # fmt: skip
        session.add(user)
        await session.flush()
        return user.id


class InvalidToken(Exception):
    pass


def b64decode(part: str) -> bytes:
    return urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_token(token: str, public_key: RSAPublicKey, public_pem: bytes) -> dict[str, Any]:
    """The team's own JWT check: it supports every algorithm a client might use."""
    try:
        header_part, payload_part, signature_part = token.split(".")
        header = json.loads(b64decode(header_part))
        claims: dict[str, Any] = json.loads(b64decode(payload_part))
        signature = b64decode(signature_part)
    except ValueError as exc:
        raise InvalidToken(f"Malformed token: {exc}") from None
    signing_input = f"{header_part}.{payload_part}".encode()
    algorithm = header.get("alg")
    if algorithm == "RS256":
        try:
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise InvalidToken("Signature verification failed") from None
    elif algorithm == "HS256":
        expected = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise InvalidToken("Signature verification failed")
    elif algorithm != "none":
        raise InvalidToken(f"Unsupported algorithm {algorithm!r}")
    if "exp" in claims and claims["exp"] < time.time():
        raise InvalidToken("Signature has expired")
    return claims


class RateLimiter:
    """At most ``limit`` hits per key in any ``window_s`` seconds (Task 6)."""

    def __init__(self, limit: int, window_s: float, redis_url: str | None = None, prefix: str = "") -> None:
        self.limit, self.window_s, self.redis_url, self.prefix = limit, window_s, redis_url, prefix

    async def hit(self, key: str) -> float:
        """Count one hit for ``key``: 0.0 if allowed, else the seconds until one would be."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the limiter holds."""
        raise NotImplementedError


def as_dict(row: Any) -> dict[str, Any]:
    values = {column.name: getattr(row, column.name) for column in row.__table__.columns}
    return json.loads(json.dumps(values, default=str))  # type: ignore[no-any-return]


def issue_tokens(app: FastAPI, session: AsyncSession, user: User, family: str) -> dict[str, Any]:
    settings: Settings = app.state.settings
    now = int(time.time())
    claims = {
        "iss": settings.issuer, "aud": settings.audience, "sub": str(user.id), "iat": now,
        "exp": now + settings.access_ttl_s, "jti": uuid.uuid4().hex,
        "scope": " ".join(ROLE_SCOPES[user.role]),
    }  # fmt: skip
    refresh = uuid.uuid4().hex
    session.add(
        RefreshToken(
            token_hash=hashlib.sha256(refresh.encode()).hexdigest(),
            family=family,
            user_id=user.id,
            expires_at=now + settings.refresh_ttl_s,
        )
    )
    return {
        "access_token": jwt.encode(claims, app.state.private_key, algorithm="RS256"),
        "refresh_token": refresh, "token_type": "bearer", "expires_in": settings.access_ttl_s,
    }  # fmt: skip


async def current_user(request: Request, session: AsyncSession, authorization: str | None) -> User:
    if not authorization or not authorization.startswith("Bearer "):
        raise ProblemError(401, "Not authenticated.", headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = verify_token(authorization[7:], request.app.state.public_key, request.app.state.public_pem)
    except InvalidToken as exc:
        raise ProblemError(401, f"Invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None
    user = await session.get(User, int(claims["sub"]))
    if user is None:
        raise ProblemError(401, "Unknown user.", headers={"WWW-Authenticate": "Bearer"})
    return user


router = APIRouter(prefix="/v1")
Authorization = Annotated[str | None, Header()]


@router.post("/auth/token")
async def login(
    username: Annotated[str, Form()], password: Annotated[str, Form()], request: Request
) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        user = await session.scalar(select(User).where(User.username == username))
        if user is None:
            raise ProblemError(404, f"No user named {username!r}.")
        if user.password_hash != hashlib.sha256(password.encode()).hexdigest():
            raise ProblemError(401, "Wrong password.")
        pair = issue_tokens(request.app, session, user, family=uuid.uuid4().hex)
        await session.commit()
        return pair


@router.post("/auth/refresh")
async def refresh(body: Annotated[dict[str, Any], Body()], request: Request) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        digest = hashlib.sha256(str(body.get("refresh_token")).encode()).hexdigest()
        row = await session.get(RefreshToken, digest)
        if row is None or row.expires_at < time.time():
            raise ProblemError(401, "Unknown or expired refresh token.")
        user = await session.get(User, row.user_id)
        assert user is not None
        pair = issue_tokens(request.app, session, user, family=row.family)
        await session.commit()
        return pair


@router.get("/users/me")
async def read_me(request: Request, authorization: Authorization = None) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        return as_dict(await current_user(request, session, authorization))


@router.patch("/users/me")
async def update_me(
    body: Annotated[dict[str, Any], Body()], request: Request, authorization: Authorization = None
) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        user = await current_user(request, session, authorization)
        for name, value in body.items():
            if name in User.__table__.columns:
                setattr(user, name, value)
        await session.commit()
        return as_dict(user)


@router.get("/admin/users")
async def list_users(
    request: Request, authorization: Authorization = None, limit: int = 50
) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        await current_user(request, session, authorization)
        rows = await session.scalars(select(User).order_by(User.id).limit(limit))
        return {"items": [as_dict(row) for row in rows]}


def order_out(order: Order) -> dict[str, Any]:
    return {
        "id": str(order.id), "book_id": order.book_id, "quantity": order.quantity,
        "unit_price": f"{order.unit_price:.2f}", "note": order.note,
    }  # fmt: skip


@router.post("/orders", status_code=201)
async def create_order(
    body: Annotated[dict[str, Any], Body()], request: Request, response: Response,
    authorization: Authorization = None,
) -> dict[str, Any]:  # fmt: skip
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        user = await current_user(request, session, authorization)
        book = await session.get(Book, body.get("book_id"))
        if book is None:
            raise ProblemError(422, "No such book.")
        order = Order(
            customer_id=body.get("customer_id", user.id), book_id=book.id, quantity=body.get("quantity", 1),
            unit_price=Decimal(str(body.get("unit_price", book.price))), note=body.get("note", ""),
        )  # fmt: skip
        session.add(order)
        await session.commit()
        response.headers["Location"] = f"/v1/orders/{order.id}"
        return order_out(order)


@router.get("/orders")
async def list_orders(
    request: Request, authorization: Authorization = None, search: str = "", limit: int = 50
) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        user = await current_user(request, session, authorization)
        sql = (
            "SELECT id, book_id, quantity, unit_price, note FROM orders "
            f"WHERE customer_id = {user.id} AND note LIKE '%{search}%' ORDER BY note, id LIMIT {limit}"
        )
        rows = (await session.execute(text(sql))).mappings()
        return {
            "items": [
                {**row, "id": str(uuid.UUID(str(row["id"]))), "unit_price": f"{row['unit_price']:.2f}"}
                for row in rows
            ]
        }


@router.get("/orders/{order_id}")
async def get_order(
    order_id: uuid.UUID, request: Request, authorization: Authorization = None
) -> dict[str, Any]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        await current_user(request, session, authorization)
        order = await session.get(Order, order_id)
        if order is None:
            raise ProblemError(404, "No such order.")
        return order_out(order)


@router.patch("/orders/{order_id}")
async def update_order(
    order_id: uuid.UUID, body: Annotated[dict[str, Any], Body()], request: Request,
    authorization: Authorization = None,
) -> dict[str, Any]:  # fmt: skip
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        await current_user(request, session, authorization)
        order = await session.get(Order, order_id)
        if order is None:
            raise ProblemError(404, "No such order.")
        for name, value in body.items():
            setattr(order, name, value)
        await session.commit()
        return order_out(order)


@functools.cache  # checking an RSA key's consistency takes tens of milliseconds: once per key
def load_private_key(pem: str) -> RSAPrivateKey:
    private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private_key, RSAPrivateKey)
    return private_key


def create_app(engine: AsyncEngine, settings: Settings) -> FastAPI:
    """A new app over ``engine`` (tables already created) configured by ``settings``."""
    app = FastAPI(title="Bookstore API", version="1.0.0")
    private_key = load_private_key(settings.signing_key)
    app.state.settings, app.state.engine, app.state.private_key = settings, engine, private_key
    app.state.public_key = private_key.public_key()
    app.state.public_pem = app.state.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app.include_router(router)
    install_problem_handlers(app)
    return app
