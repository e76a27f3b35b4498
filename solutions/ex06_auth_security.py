"""Secure the bookstore API

Reference solution. The contract is stated in ``exercises/ex06_auth_security.py``;
this module is the provided bookstore API with every hole closed:

1. given: settings, tables, problem details (unchanged from the stub);
2. passwords: argon2id through pwdlib, rehash on login, a dummy hash for unknown users;
3. tokens: RS256 access tokens decoded with a pinned algorithm and required claims,
   opaque refresh tokens rotated in the database with reuse detection;
4. rate limits: a sliding window per username and per client, in process or in Redis;
5. routes: object-, function- and property-level authorization, bound SQL parameters.
"""

import functools
import hashlib
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from sqlalchemy import ForeignKey, Numeric, String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RateLimiter", "Settings", "add_book", "add_user", "create_app", "create_schema"]

PROBLEM_JSON: Final = "application/problem+json"
VALIDATION_PROBLEM: Final = "https://bookstore.example/problems/validation-error"
MAX_ID: Final = 2_147_483_647
ROLES: Final = ("customer", "admin")
# What each role may do: the access token carries these as its "scope" claim.
ROLE_SCOPES: Final = {"customer": ("orders",), "admin": ("orders", "admin")}


# --------------------------------------------------------------------------- 1. given


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


RFC9110_PHRASES: Final = {422: "Unprocessable Content"}


def reason_phrase(status: int) -> str:
    return RFC9110_PHRASES.get(status) or HTTPStatus(status).phrase


class FieldError(BaseModel):
    loc: list[
        Annotated[str, Field(max_length=100)]
        | Annotated[int, Field(ge=0, le=10_000, json_schema_extra={"format": "int32"})]
    ] = Field(max_length=20)
    msg: str = Field(max_length=500)
    type: str = Field(max_length=100)


class Problem(BaseModel):
    """RFC 9457 problem details: the one shape of every error."""

    type: str = Field(default="about:blank", max_length=200, json_schema_extra={"format": "uri-reference"})
    title: str = Field(max_length=100)
    status: int = Field(ge=400, le=599, json_schema_extra={"format": "int32"})
    detail: str = Field(max_length=500)
    instance: str = Field(max_length=2000, json_schema_extra={"format": "uri-reference"})
    errors: list[FieldError] | None = Field(default=None, max_length=100)


def problem_response(
    request: Request, status: int, detail: str, *, headers: Mapping[str, str] | None = None,
    type_: str = "about:blank", errors: list[FieldError] | None = None,
) -> Response:  # fmt: skip
    problem = Problem(
        type=type_, title=reason_phrase(status), status=status, detail=detail,
        instance=quote(request.url.path), errors=errors,  # percent-encoded: a URI reference
    )  # fmt: skip
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def own_problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(request, exc.status, exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        return problem_response(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        # loc/msg/type only: "input" would echo what was sent, a password included.
        errors = [
            FieldError(loc=list(e["loc"]), msg=str(e["msg"]), type=str(e["type"])) for e in exc.errors()
        ]
        detail = f"The request is invalid: {len(errors)} error(s), see 'errors'."
        return problem_response(request, 422, detail, type_=VALIDATION_PROBLEM, errors=errors)

    @app.exception_handler(Exception)
    async def server_problem(request: Request, exc: Exception) -> Response:
        return problem_response(request, 500, "An unexpected error occurred.")


# --------------------------------------------------------------------------- 2. passwords


def password_hasher(settings: Settings) -> PasswordHash:
    """argon2id with the configured cost: memory-hard, so GPUs and ASICs gain little."""
    return PasswordHash(
        (
            Argon2Hasher(
                time_cost=settings.argon2_time_cost,
                memory_cost=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
        )
    )


async def add_user(
    engine: AsyncEngine, settings: Settings, username: str, password: str, role: str = "customer"
) -> int:
    """Store a user whose password only the app's login can check; returns the user's id."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    async with AsyncSession(engine) as session, session.begin():
        user = User(
            username=username, display_name=username, role=role,
            password_hash=password_hasher(settings).hash(password),
        )  # fmt: skip
        session.add(user)
        await session.flush()
        return user.id


# --------------------------------------------------------------------------- 3. tokens


@dataclass(frozen=True)
class Keys:
    private: RSAPrivateKey
    public_pem: bytes


@functools.cache  # checking an RSA key's consistency takes tens of milliseconds: once per key
def load_keys(signing_key: str) -> Keys:
    private = serialization.load_pem_private_key(signing_key.encode(), password=None)
    if not isinstance(private, RSAPrivateKey):
        raise ValueError("signing_key must be an RSA private key in PEM")
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Keys(private=private, public_pem=public_pem)


REQUIRED_CLAIMS: Final = ["exp", "iat", "iss", "aud", "sub", "jti"]


def issue_access_token(settings: Settings, keys: Keys, user: User) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user.id),  # RFC 7519: sub is a string; PyJWT >= 2.10 rejects an int
        "iat": now,
        "exp": now + settings.access_ttl_s,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(ROLE_SCOPES[user.role]),
    }
    return jwt.encode(claims, keys.private, algorithm="RS256")


def decode_access_token(settings: Settings, keys: Keys, token: str) -> dict[str, Any]:
    """Verified claims, or InvalidTokenError. The algorithm is ours, never the token's header."""
    claims: dict[str, Any] = jwt.decode(
        token,
        keys.public_pem,
        algorithms=["RS256"],
        audience=settings.audience,
        issuer=settings.issuer,
        options={"require": REQUIRED_CLAIMS},
    )
    return claims


def token_digest(token: str) -> str:
    # The database keeps only a hash: a leaked table does not hand out live sessions.
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_refresh_token(session: AsyncSession, settings: Settings, user_id: int, family: str) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=token_digest(token),
            family=family,
            user_id=user_id,
            expires_at=time.time() + settings.refresh_ttl_s,
        )
    )
    return token


async def rotate_refresh_token(session: AsyncSession, settings: Settings, presented: str) -> tuple[User, str]:
    """Spend a refresh token once; a second use revokes every token of its family."""
    digest = token_digest(presented)
    row = await session.get(RefreshToken, digest)
    if row is None or row.revoked or row.expires_at <= time.time():
        raise unauthorized()
    # Claim it with a conditional UPDATE: of two concurrent refreshes only one changes the row.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == digest, RefreshToken.used.is_(False))
        .values(used=True)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        # Reuse: the token was stolen or replayed. Nobody can tell which copy is the
        # legitimate one, so the whole login (family) ends; the user signs in again.
        await session.execute(
            update(RefreshToken).where(RefreshToken.family == row.family).values(revoked=True)
        )
        await session.commit()
        raise unauthorized()
    user = await session.get(User, row.user_id)
    if user is None:
        raise unauthorized()
    new_token = await issue_refresh_token(session, settings, user.id, row.family)
    await session.commit()
    return user, new_token


# --------------------------------------------------------------------------- 4. rate limits

# A sliding-window log in one Lua script: Redis runs a script atomically, so processes
# sharing the server cannot interleave between "count" and "add". The server's clock
# (TIME) is the only clock, so processes with skewed clocks still agree.
SLIDING_WINDOW_LUA: Final = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RateLimiter:
    """At most ``limit`` hits per key in any ``window_s`` seconds (a sliding window).

    In this process by default; in Redis at ``redis_url`` when given, shared by every
    process that uses the same ``prefix``.
    """

    def __init__(self, limit: int, window_s: float, redis_url: str | None = None, prefix: str = "") -> None:
        self.limit, self.window_s, self.prefix = limit, window_s, prefix
        self._hits: dict[str, deque[float]] = {}
        self._redis: Redis | None = None
        if redis_url:
            # Imported here: redis.asyncio takes a while to import, and only this path needs it.
            import redis.asyncio

            self._redis = redis.asyncio.from_url(redis_url)
        self._script = self._redis.register_script(SLIDING_WINDOW_LUA) if self._redis else None

    async def hit(self, key: str) -> float:
        """Count one hit for ``key``: 0.0 if allowed, else the seconds until one would be."""
        if self._script is not None:
            wait = await self._script(
                keys=[self.prefix + key], args=[self.window_s, self.limit, uuid.uuid4().hex]
            )
            return float(wait)
        # No await between reading and appending: on one event loop this is atomic.
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            return 0.0
        return hits[0] + self.window_s - now

    async def aclose(self) -> None:
        """Release the Redis connections (nothing to do in process)."""
        if self._redis is not None:
            await self._redis.aclose()


# --------------------------------------------------------------------------- 5. routes

MoneyOut = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "maxLength": 12}),
]
Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]  # PostgreSQL refuses NUL


class TokenPair(BaseModel):
    access_token: str = Field(max_length=4096, pattern=r"^[A-Za-z0-9_.-]+$")
    refresh_token: str = Field(max_length=256, pattern=r"^[A-Za-z0-9_-]+$")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(ge=1, le=86_400, json_schema_extra={"format": "int32"})


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")


class UserOut(BaseModel):
    """What a user looks like to clients: no id, no password hash."""

    model_config = ConfigDict(from_attributes=True)

    username: str = Field(max_length=64, pattern=r"^[^\x00]+$")
    display_name: str = Field(max_length=100, pattern=r"^[^\x00]+$")
    role: Literal["customer", "admin"]


class UserUpdate(BaseModel):
    """The only field a user may change about themselves: role is not here (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]+$")


class UserPage(BaseModel):
    items: list[UserOut] = Field(max_length=100)


class OrderIn(BaseModel):
    """No price, no owner: the server decides both."""

    model_config = ConfigDict(extra="forbid")

    book_id: int = Field(ge=1, le=MAX_ID, json_schema_extra={"format": "int32"})
    quantity: int = Field(ge=1, le=100, json_schema_extra={"format": "int32"})
    note: Text = ""


class OrderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Text


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: Annotated[uuid.UUID, Field(json_schema_extra={"maxLength": 36})]
    book_id: int = Field(ge=1, le=MAX_ID, json_schema_extra={"format": "int32"})
    quantity: int = Field(ge=1, le=100, json_schema_extra={"format": "int32"})
    unit_price: MoneyOut
    note: Text


class OrderPage(BaseModel):
    items: list[OrderOut] = Field(max_length=100)


@dataclass
class Services:
    """What the routes share: built once per app by create_app."""

    settings: Settings
    keys: Keys
    hasher: PasswordHash
    dummy_hash: str
    sessions: async_sessionmaker[AsyncSession]
    user_limiter: RateLimiter
    client_limiter: RateLimiter
    request_limiter: RateLimiter


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token",
    refreshUrl="/v1/auth/refresh",
    scopes={"orders": "Place and read your own orders", "admin": "Manage users"},
    description="RS256-signed JWT access tokens (5 minutes) following RFC8725 best practices; "
    "rotating refresh tokens.",
    auto_error=False,
)


def unauthorized() -> ProblemError:
    # One answer for every token problem: which check failed would help an attacker only.
    return ProblemError(401, "Missing or invalid credentials.", headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    security_scopes: SecurityScopes,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    services: ServicesDep,
    session: SessionDep,
) -> User:
    if not token:
        raise unauthorized()
    try:
        claims = decode_access_token(services.settings, services.keys, token)
    except jwt.InvalidTokenError:
        raise unauthorized() from None
    subject = str(claims["sub"])
    # A verified token names one of our users, but stay strict: anything else is a 401, not a 500.
    user = await session.get(User, int(subject)) if subject.isdecimal() and int(subject) <= MAX_ID else None
    if user is None:
        raise unauthorized()
    granted = set(str(claims.get("scope", "")).split())
    if not granted.issuperset(security_scopes.scopes):
        raise ProblemError(403, "Your role does not allow this operation.")
    return user


CustomerDep = Annotated[User, Security(current_user, scopes=["orders"])]
AnyUserDep = Annotated[User, Security(current_user)]
AdminDep = Annotated[User, Security(current_user, scopes=["admin"])]


def header(description: str, maximum: int) -> dict[str, Any]:
    schema = {"type": "integer", "format": "int32", "minimum": 0, "maximum": maximum}
    return {"description": description, "schema": schema}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        declared[status] = {"model": Problem, "description": reason_phrase(status)}
        if status == 429:
            declared[status]["headers"] = {"Retry-After": header("Seconds to wait before retrying", 86_400)}
    return declared


auth = APIRouter(prefix="/auth", tags=["auth"])


# security [{}]: "no credentials needed", stated rather than forgotten.
NO_CREDENTIALS: Final[dict[str, Any]] = {"security": [{}]}


@auth.post(
    "/token", response_model=TokenPair, responses=problems(400, 401, 422, 429), openapi_extra=NO_CREDENTIALS
)
async def login(
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> TokenPair:
    """OAuth2 password flow: a form with username and password."""
    client = request.client.host if request.client else "unknown"
    waits = [
        await services.user_limiter.hit("user:" + username.casefold()),  # one account, any client
        await services.client_limiter.hit("client:" + client),  # one client, any account
    ]
    if max(waits) > 0:
        raise ProblemError(
            429, "Too many login attempts; retry later.", headers={"Retry-After": str(math.ceil(max(waits)))}
        )
    user = await session.scalar(select(User).where(User.username == username))
    # Unknown users cost one argon2 verification too, against a dummy hash: the time
    # of the answer must not tell an attacker which usernames exist.
    valid, new_hash = services.hasher.verify_and_update(
        password, user.password_hash if user else services.dummy_hash
    )
    if user is None or not valid:
        raise ProblemError(401, "Incorrect username or password.", headers={"WWW-Authenticate": "Bearer"})
    if new_hash is not None:  # the stored hash used older parameters: upgrade it now
        user.password_hash = new_hash
    refresh = await issue_refresh_token(session, services.settings, user.id, family=uuid.uuid4().hex)
    await session.commit()
    access = issue_access_token(services.settings, services.keys, user)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=services.settings.access_ttl_s)


@auth.post(
    "/refresh", response_model=TokenPair, responses=problems(400, 401, 422), openapi_extra=NO_CREDENTIALS
)
async def refresh(payload: RefreshIn, services: ServicesDep, session: SessionDep) -> TokenPair:
    """Trade a refresh token for a new pair; each refresh token works once."""
    user, new_refresh = await rotate_refresh_token(session, services.settings, payload.refresh_token)
    access = issue_access_token(services.settings, services.keys, user)
    return TokenPair(
        access_token=access, refresh_token=new_refresh, expires_in=services.settings.access_ttl_s
    )


users = APIRouter(prefix="/users", tags=["users"], responses=problems(400, 401, 422))


@users.get("/me", response_model=UserOut)
async def read_me(user: AnyUserDep) -> UserOut:
    return UserOut.model_validate(user)


@users.patch("/me", response_model=UserOut)
async def update_me(payload: UserUpdate, user: AnyUserDep, session: SessionDep) -> UserOut:
    user.display_name = payload.display_name
    await session.commit()
    return UserOut.model_validate(user)


admin = APIRouter(prefix="/admin", tags=["admin"], responses=problems(400, 401, 403, 422))


@admin.get("/users", response_model=UserPage)
async def list_users(
    _admin: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100, json_schema_extra={"format": "int32"})] = 50,
) -> UserPage:
    rows = await session.scalars(select(User).order_by(User.id).limit(limit))
    return UserPage(items=[UserOut.model_validate(row) for row in rows])


# 400: FastAPI answers it to a body that is not JSON at all.
orders = APIRouter(prefix="/orders", tags=["orders"], responses=problems(400, 401, 403, 422))


@orders.post("", status_code=201, response_model=OrderOut)
async def create_order(
    payload: OrderIn, user: CustomerDep, session: SessionDep, response: Response
) -> OrderOut:
    book = await session.get(Book, payload.book_id)
    if book is None:
        raise ProblemError(422, f"No book with id {payload.book_id}.")
    order = Order(
        customer_id=user.id, book_id=book.id, quantity=payload.quantity, unit_price=book.price,
        note=payload.note,
    )  # fmt: skip
    session.add(order)
    await session.commit()
    response.headers["Location"] = f"/v1/orders/{order.id}"
    return OrderOut.model_validate(order)


@orders.get("", response_model=OrderPage)
async def list_orders(
    user: CustomerDep,
    session: SessionDep,
    search: Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=100, json_schema_extra={"format": "int32"})] = 50,
) -> OrderPage:
    """Your orders whose note contains ``search`` (literally: % and _ are not wildcards)."""
    query = (
        select(Order)
        .where(Order.customer_id == user.id, Order.note.contains(search, autoescape=True))
        .order_by(Order.note, Order.id)
        .limit(limit)
    )
    return OrderPage(items=[OrderOut.model_validate(row) for row in await session.scalars(query)])


# UUIDs, not 1, 2, 3: ids cannot be counted through (the owner filter is the real defence).
OrderId = Annotated[uuid.UUID, Path(json_schema_extra={"maxLength": 36})]


async def own_order(session: AsyncSession, user: User, order_id: uuid.UUID) -> Order:
    # Someone else's order and no order at all get the same 404: no existence oracle.
    order = await session.scalar(select(Order).where(Order.id == order_id, Order.customer_id == user.id))
    if order is None:
        raise ProblemError(404, "No such order.")
    return order


@orders.get("/{order_id}", response_model=OrderOut, responses=problems(404))
async def get_order(order_id: OrderId, user: CustomerDep, session: SessionDep) -> OrderOut:
    return OrderOut.model_validate(await own_order(session, user, order_id))


@orders.patch("/{order_id}", response_model=OrderOut, responses=problems(404))
async def update_order(
    order_id: OrderId, payload: OrderUpdate, user: CustomerDep, session: SessionDep
) -> OrderOut:
    order = await own_order(session, user, order_id)
    order.note = payload.note
    await session.commit()
    return OrderOut.model_validate(order)


v1 = APIRouter(prefix="/v1")
for router in (auth, users, admin, orders):
    v1.include_router(router)


# IETF draft "RateLimit header fields for HTTP" (the draft-03 names most clients know).
RATE_LIMIT_HEADERS: Final = ("RateLimit-Limit", "RateLimit-Reset")


def install_request_limit(app: FastAPI, limiter: RateLimiter) -> None:
    """Every request counts against its client's limit (OWASP API4: resource consumption)."""
    limit, reset = str(limiter.limit), str(math.ceil(limiter.window_s))

    @app.middleware("http")
    async def request_limit(request: Request, call_next: Any) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = await limiter.hit("client:" + client)
        if wait > 0:
            retry = {"Retry-After": str(math.ceil(wait))}
            response = problem_response(request, 429, "Too many requests; retry later.", headers=retry)
        else:
            response = await call_next(request)
        # Reset: with a sliding window the full quota is back at most this many seconds
        # after the client's last request.
        response.headers.update(dict(zip(RATE_LIMIT_HEADERS, (limit, reset), strict=True)))
        return response


DOCUMENTED_HEADERS: Final = {
    "RateLimit-Limit": header("Requests a client may send per window", 1_000_000),
    "RateLimit-Reset": header("Seconds until the client's full quota is back, at most", 86_400),
    "Access-Control-Allow-Origin": {
        "description": "Present on cross-origin requests from an allowed web front end",
        "schema": {"type": "string", "format": "uri", "maxLength": 200},
    },
}


def too_many_requests() -> dict[str, Any]:
    return {
        "description": reason_phrase(429),
        "headers": {"Retry-After": header("Seconds to wait before retrying", 86_400)},
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def problem_openapi(app: FastAPI) -> None:
    """Errors are documented as application/problem+json, the media type they are sent with,
    and every response with the headers the middleware adds to it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path_item in schema["paths"].values():
                for operation in path_item.values():
                    # The request limit applies to every operation, so each may answer 429.
                    operation["responses"].setdefault("429", too_many_requests())
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and "application/json" in content:
                            content[PROBLEM_JSON] = content.pop("application/json")
                        response["headers"] = {**response.get("headers", {}), **DOCUMENTED_HEADERS}
            schema["components"]["schemas"].pop("HTTPValidationError", None)
            schema["components"]["schemas"].pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def create_app(engine: AsyncEngine, settings: Settings) -> FastAPI:
    """A new app over ``engine`` (tables already created) configured by ``settings``."""
    hasher = password_hasher(settings)
    prefix = settings.redis_prefix + ":login:"
    services = Services(
        settings=settings,
        keys=load_keys(settings.signing_key),
        hasher=hasher,
        dummy_hash=hasher.hash(secrets.token_urlsafe(16)),
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        user_limiter=RateLimiter(
            settings.login_limit_per_user, settings.login_window_s, settings.redis_url, prefix
        ),
        client_limiter=RateLimiter(
            settings.login_limit_per_client, settings.login_window_s, settings.redis_url, prefix
        ),
        request_limiter=RateLimiter(
            settings.request_limit_per_client,
            settings.request_window_s,
            settings.redis_url,
            settings.redis_prefix + ":requests:",
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for limiter in (services.user_limiter, services.client_limiter, services.request_limiter):
            await limiter.aclose()

    app = FastAPI(title="Bookstore API", version="1.0.0", lifespan=lifespan)
    app.state.services = services
    app.include_router(v1)
    install_problem_handlers(app)
    install_request_limit(app, services.request_limiter)
    # Added last, so outermost: a 429 from the limit above also carries the CORS headers.
    # Tokens travel in the Authorization header, never in cookies, so CORS is not a CSRF
    # defence here; it only says which web front ends may call the API from a browser.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_headers=["Authorization", "Content-Type"],
        allow_methods=["GET", "POST", "PATCH"],
        expose_headers=list(RATE_LIMIT_HEADERS),
    )
    problem_openapi(app)
    return app
