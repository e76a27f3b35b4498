"""ex06 · Secure the bookstore API: an attack suite.

The contract is the docstring of ``exercises/ex06_auth_security.py``. Every test
builds a fresh app over a database with three users (alice and bob, customers;
root, an admin) and one book, talks to it in-process over httpx, and checks what
an attacker would see: the status code, and that the answer leaks nothing (no
stack trace, no hint about which check failed, no existence oracle). Tests of
the legitimate flows (login, refresh, own orders, the admin route) guard what
the provided app already does and must keep doing.

Password hashing uses cheap argon2 parameters in the fast stage; the deep stage
checks the production parameters, measures the user-enumeration timing gap,
shares one rate limit between two processes through Redis (when
``COURSE_REDIS_URL`` is set) and fuzzes the OpenAPI document with schemathesis.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.pool import NullPool

from coursekit import db, paths, runs
from coursekit.impl import load

ex = load("ex06_auth_security")

pytestmark = pytest.mark.db

PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
USER_KEYS = {"username", "display_name", "role"}
ORDER_KEYS = {"id", "book_id", "quantity", "unit_price", "note"}
# Words that tell an attacker which check a forged token failed, or that the app crashed.
LEAKS = ("signature", "expired", "audience", "issuer", "algorithm", "alg", "traceback", "jwt", "exception")
PASSWORD = "correct horse battery staple"
REDIS_URL_ENV = "COURSE_REDIS_URL"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def key_for_tests(name: str) -> rsa.RSAPrivateKey:
    """An RSA key for these tests, made once per checkout (a new key takes 0.1-0.5 s)."""
    path = paths.work_dir("keys") / f"ex06-{name}.pem"
    try:
        # Our own key from our own folder: its consistency check (~40 ms) buys nothing here.
        key = serialization.load_pem_private_key(
            path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
        )
    except (OSError, ValueError):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        scratch.write_text(_pem(key))
        os.replace(scratch, path)  # atomic: concurrent runs never read half a key
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


SERVER_KEY = key_for_tests("server")
SERVER_PUBLIC_PEM = SERVER_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)

# Cheap argon2 for the fast stage (production cost is checked by a deep test).
CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}


def redis_url() -> str | None:
    return os.environ.get(REDIS_URL_ENV) or None


def stores() -> list[str | None]:
    """The rate-limit stores to test: in process (None), plus Redis when it is configured."""
    return [None, *([url] if (url := redis_url()) else [])]


def make_settings(**changes: Any) -> Any:
    base = ex.Settings(
        signing_key=_pem(SERVER_KEY), login_limit_per_user=50, login_limit_per_client=200,
        request_limit_per_client=100_000,
    )  # fmt: skip
    return replace(base, **{**CHEAP, **changes})


# ------------------------------------------------------------------- database


USERS = (("alice", "customer"), ("bob", "customer"), ("root", "admin"))
SCOPES = {"customer": "orders", "admin": "orders admin"}


@dataclass
class Seeded:
    """The module's database: three users and a book, created once, restored before each test."""

    engine: Engine
    ids: dict[str, int]
    hashes: dict[str, str]
    book_id: int


def quick_commits(engine: Any) -> Any:
    """SQLite only: commit without waiting for the disk (test data need not survive a power cut)."""
    sync = getattr(engine, "sync_engine", engine)
    if sync.dialect.name == "sqlite":

        @event.listens_for(sync, "connect")
        def no_fsync(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

    return engine


async def seed_users(engine: Any, settings: Any) -> tuple[dict[str, int], int]:
    ids = {name: await ex.add_user(engine, settings, name, PASSWORD, role) for name, role in USERS}
    return ids, await ex.add_book(engine, "Tides of Salt", "12.50")


async def create_and_seed(name: str, settings: Any) -> tuple[dict[str, int], int]:
    engine = quick_commits(db.make_async_engine(name))
    try:
        await ex.create_schema(engine)
        return await seed_users(engine, settings)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    engine = quick_commits(db.fresh_engine("ex06"))
    ids, book_id = anyio.run(create_and_seed, "ex06", make_settings())
    hashes = {name: stored_hash(engine, name) for name, _ in USERS}
    yield Seeded(engine, ids, hashes, book_id)
    engine.dispose()


def restore(seeded: Seeded) -> None:
    """Back to the seeded state: no orders, no refresh tokens, users as created."""
    with seeded.engine.begin() as connection:
        connection.execute(text("DELETE FROM refresh_tokens"))
        connection.execute(text("DELETE FROM orders"))
        for name, role in USERS:
            connection.execute(
                text("UPDATE users SET password_hash = :h, role = :r, display_name = :n WHERE username = :n"),
                {"h": seeded.hashes[name], "r": role, "n": name},
            )


@dataclass
class World:
    """One test's bookstore: the app, its client and who is who."""

    app: Any
    client: httpx.AsyncClient
    engine: Any
    settings: Any
    ids: dict[str, int]
    book_id: int
    sync: Engine | None = None

    def insert_orders(self, owner: str, *notes: str) -> list[str]:
        """Orders stored directly (faster than through the API); returns their ids."""
        assert self.sync is not None
        rows = [
            {"id": uuid.uuid4(), "customer_id": self.ids[owner], "book_id": self.book_id, "quantity": 1,
             "unit_price": Decimal("12.50"), "note": note}
            for note in notes
        ]  # fmt: skip
        with self.sync.begin() as connection:
            connection.execute(insert(ex.Order), rows)
        return [str(row["id"]) for row in rows]

    def client_from(self, host: str) -> httpx.AsyncClient:
        transport = CrashReportingTransport(app=self.app, client=(host, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://test")


class AppCrashed(Exception):
    """The app raised instead of answering."""


class CrashReportingTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except Exception as exc:
            raise AppCrashed(
                f"{request.method} {request.url.path} raised {type(exc).__name__}: {exc}"
            ) from None


@asynccontextmanager
async def serve(name: str, settings: Any, ids: dict[str, int], book_id: int) -> AsyncIterator[World]:
    engine = quick_commits(db.make_async_engine(name))
    app = ex.create_app(engine, settings)
    try:
        async with app.router.lifespan_context(app):
            transport = CrashReportingTransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield World(app, client, engine, settings, ids, book_id)
    finally:
        await engine.dispose()


@pytest.fixture
async def world(seeded: Seeded) -> AsyncIterator[World]:
    restore(seeded)
    async with serve("ex06", make_settings(), seeded.ids, seeded.book_id) as built:
        built.sync = seeded.engine
        yield built


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": username, "password": password})


async def tokens(world: World, username: str) -> dict[str, Any]:
    response = await login(world.client, username)
    assert response.status_code == 200, (
        f"login as {username} failed: {response.status_code} {shown(response)[:200]}"
    )
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def as_user(world: World, username: str) -> dict[str, str]:
    """The header of a valid access token for ``username``, as the contract describes it."""
    role = dict(USERS)[username]
    claims = claims_for(world, username, scope=SCOPES[role])
    return bearer(jwt.encode(claims, SERVER_KEY, algorithm="RS256"))


def shown(response: httpx.Response) -> str:
    """The start of a body for a failure message, tokens blanked out (check output gets stored)."""
    return re.sub(r"eyJ[\w-]*\.[\w-]*\.[\w-]*", "<a JWT>", response.text)[:300]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with this status and no leaked internals; returns the body."""
    __tracebackhide__ = True
    if response.status_code != status:
        pytest.fail(f"expected status {status}, got {response.status_code}: {shown(response)}")
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith(PROBLEM_JSON):
        pytest.fail(f"Content-Type is {content_type!r}, expected {PROBLEM_JSON}")
    body: dict[str, Any] = response.json()
    if PROBLEM_KEYS - body.keys() or body.get("status") != status:
        pytest.fail(f"not a problem-details body for {status}: {body}")
    if "traceback" in response.text.lower() or 'file "' in response.text.lower():
        pytest.fail(f"the response shows a stack trace: {shown(response)}")
    return body


def assert_refused_token(response: httpx.Response, baseline: httpx.Response) -> None:
    """401, WWW-Authenticate: Bearer, and the same body as a request with no token at all."""
    __tracebackhide__ = True
    body = assert_problem(response, 401)
    if not response.headers.get("www-authenticate", "").lower().startswith("bearer"):
        pytest.fail("a 401 for a bearer token carries 'WWW-Authenticate: Bearer'")
    leaked = [word for word in LEAKS if word in json.dumps(body).lower()]
    if leaked:
        pytest.fail(f"the 401 tells the attacker which check failed ({leaked}): {body}")
    if body != baseline.json():
        pytest.fail(f"a forged token and no token get different answers: {body} vs {baseline.json()}")


def claims_for(world: World, username: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": world.settings.issuer, "aud": world.settings.audience, "sub": str(world.ids[username]),
        "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "scope": "orders admin",
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    """A JWS built by hand: PyJWT refuses to produce some of the tokens attackers send."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


async def probe(world: World, token: str) -> tuple[httpx.Response, httpx.Response]:
    """(answer to the forged token, answer to no token) on GET /v1/users/me."""
    return (
        await world.client.get("/v1/users/me", headers=bearer(token)),
        await world.client.get("/v1/users/me"),
    )


async def place_order(world: World, headers: dict[str, str], note: str = "", **extra: Any) -> httpx.Response:
    body = {"book_id": world.book_id, "quantity": 2, "note": note, **extra}
    return await world.client.post("/v1/orders", json=body, headers=headers)


def stored_hash(engine: Engine, username: str) -> str:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}
        ).scalar_one()
    return str(value)


# ------------------------------------------------------------------- Task 1


class TestPasswords:
    """Task 1: passwords stored with argon2id, checked without telling who exists."""

    @pytest.mark.stub_keeps
    @pytest.mark.anyio
    async def test_login_with_the_right_password_works(self, world: World) -> None:
        """The right password gives 200 with a bearer access token and a refresh token."""
        response = await login(world.client, "alice")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["access_token"]
        assert body["refresh_token"]

    @pytest.mark.anyio
    async def test_passwords_are_stored_as_salted_argon2id(self, world: World, seeded: Seeded) -> None:
        """The stored hash is argon2id with the configured cost, salted: same password, different hashes."""
        alice, bob = stored_hash(seeded.engine, "alice"), stored_hash(seeded.engine, "bob")
        if not alice.startswith("$argon2id$"):
            pytest.fail(f"the stored password hash is {alice[:20]!r}..., not argon2id", pytrace=False)
        if "m=8,t=1,p=1" not in alice:
            pytest.fail(f"the hash does not use the configured parameters: {alice[:40]}", pytrace=False)
        assert alice != bob, "alice and bob share a password and got the same hash: no salt"
        assert PASSWORD not in alice

    @pytest.mark.anyio
    async def test_login_rehashes_a_hash_with_old_parameters(self, world: World, seeded: Seeded) -> None:
        """An app configured with a higher cost upgrades a user's old hash at their next login."""
        stronger = replace(world.settings, argon2_time_cost=2)
        app = ex.create_app(world.engine, stronger)
        transport = CrashReportingTransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await login(client, "alice")
            assert response.status_code == 200, response.text
            assert "t=1," in stored_hash(seeded.engine, "bob"), "only the user who logged in is rehashed"
            after = stored_hash(seeded.engine, "alice")
            assert after.startswith("$argon2id$"), f"not argon2id after login: {after[:40]}"
            assert "t=2," in after, f"not rehashed at login: {after[:40]}"
            assert (await login(client, "alice")).status_code == 200, "the new hash does not verify"

    @pytest.mark.anyio
    async def test_user_enumeration_by_status_or_body_is_impossible(self, world: World) -> None:
        """An unknown username and a wrong password get the same 401 problem, word for word."""
        unknown = await login(world.client, "mallory", "guess")
        wrong = await login(world.client, "alice", "guess")
        unknown_body, wrong_body = assert_problem(unknown, 401), assert_problem(wrong, 401)
        assert unknown_body == wrong_body, f"the answers differ: {unknown_body} vs {wrong_body}"
        assert unknown.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")

    @pytest.mark.deep
    @pytest.mark.anyio
    async def test_default_cost_is_the_production_cost(self) -> None:
        """With default settings the stored hash is argon2id m=65536, t=3, p=4 (pwdlib's recommended)."""
        sync = db.fresh_engine("ex06cost")
        engine = db.make_async_engine("ex06cost")
        try:
            await ex.create_schema(engine)
            await ex.add_user(engine, ex.Settings(signing_key=_pem(SERVER_KEY)), "carol", PASSWORD)
            stored = stored_hash(sync, "carol")
        finally:
            await engine.dispose()
            sync.dispose()
        assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored[:40]

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    @pytest.mark.anyio
    async def test_user_enumeration_by_timing_is_impossible(self) -> None:
        """An unknown username takes about as long to refuse as a wrong password (median of 9)."""
        settings = make_settings(argon2_time_cost=2, argon2_memory_kib=8192)  # ~10 ms per check
        db.reset_database("ex06time")
        ids, book_id = await create_and_seed("ex06time", settings)
        async with serve("ex06time", settings, ids, book_id) as w:
            durations: dict[str, list[float]] = {"mallory": [], "alice": []}
            for _ in range(9):
                for name in durations:  # interleaved: a busy moment hits both alike
                    started = time.perf_counter()
                    response = await login(w.client, name, "wrong guess")
                    durations[name].append(time.perf_counter() - started)
                    assert_problem(response, 401)
            unknown, known = (statistics.median(durations[n]) for n in ("mallory", "alice"))
            assert unknown >= 0.5 * known, (
                f"unknown users are refused {known / unknown:.1f}x faster than wrong passwords: "
                "the response time tells which usernames exist"
            )


# ------------------------------------------------------------------- Task 2


class TestAccessTokens:
    """Task 2: only tokens the server signed, for this API, unexpired, are accepted."""

    @pytest.mark.stub_keeps
    @pytest.mark.anyio
    async def test_valid_token_reads_own_profile(self, world: World) -> None:
        """A fresh access token gives 200 on GET /v1/users/me with the user's name and role."""
        response = await world.client.get("/v1/users/me", headers=await as_user(world, "alice"))
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "alice"
        assert response.json()["role"] == "customer"

    @pytest.mark.anyio
    async def test_alg_none_token_is_refused(self, world: World) -> None:
        """A token with alg 'none' and no signature is a 401 that says nothing about why."""
        token = hand_signed({"alg": "none", "typ": "JWT"}, claims_for(world, "root"), lambda _: b"")
        assert_refused_token(*await probe(world, token))
        unsigned = token.rsplit(".", 1)[0] + "."
        assert_refused_token(*await probe(world, unsigned))

    @pytest.mark.anyio
    async def test_token_signed_with_wrong_key_is_refused(self, world: World) -> None:
        """A token signed with another RSA key is a 401 that says nothing about why."""
        token = jwt.encode(claims_for(world, "root"), key_for_tests("attacker"), algorithm="RS256")
        assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_hs256_signed_with_the_public_key_is_refused(self, world: World) -> None:
        """Algorithm confusion: HS256 with the server's public key as HMAC secret is a 401."""
        for pem in (SERVER_PUBLIC_PEM, SERVER_PUBLIC_PEM.strip()):
            token = hand_signed(
                {"alg": "HS256", "typ": "JWT"}, claims_for(world, "root"),
                lambda data, key=pem: hmac.new(key, data, hashlib.sha256).digest(),
            )  # fmt: skip
            assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_expired_token_is_refused(self, world: World) -> None:
        """A correctly signed token whose exp has passed is a 401 that does not say 'expired'."""
        past = int(time.time()) - 3600
        token = jwt.encode(
            claims_for(world, "alice", iat=past - 300, exp=past), SERVER_KEY, algorithm="RS256"
        )
        assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_token_without_expiry_is_refused(self, world: World) -> None:
        """A correctly signed token without exp (valid forever) is a 401."""
        token = jwt.encode(claims_for(world, "alice", exp=None), SERVER_KEY, algorithm="RS256")
        assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_wrong_audience_token_is_refused(self, world: World) -> None:
        """A token the same issuer signed for another API (other aud, or none) is a 401."""
        for audience in ("reporting-api", None):
            token = jwt.encode(claims_for(world, "alice", aud=audience), SERVER_KEY, algorithm="RS256")
            assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_wrong_issuer_token_is_refused(self, world: World) -> None:
        """A token from another issuer (or none), signed with the right key, is a 401."""
        for issuer in ("https://evil.example", None):
            token = jwt.encode(claims_for(world, "alice", iss=issuer), SERVER_KEY, algorithm="RS256")
            assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_tampered_payload_is_refused(self, world: World) -> None:
        """alice's real token with its payload edited to bob's id (signature kept) is a 401."""
        header, _, signature = (
            (await as_user(world, "alice"))["Authorization"].removeprefix("Bearer ").split(".")
        )
        forged_claims = claims_for(world, "bob")
        token = f"{header}.{b64url(json.dumps(forged_claims).encode())}.{signature}"
        assert_refused_token(*await probe(world, token))

    @pytest.mark.anyio
    async def test_garbage_tokens_are_refused_without_a_crash(self, world: World) -> None:
        """Malformed bearer tokens (not JWTs, bad base64, a non-numeric sub) are a 401, never a 500."""
        strange_sub = jwt.encode(claims_for(world, "alice", sub="alice"), SERVER_KEY, algorithm="RS256")
        huge_sub = jwt.encode(claims_for(world, "alice", sub="9" * 40), SERVER_KEY, algorithm="RS256")
        for token in ("not-a-jwt", "a.b.c", "eyJhbGciOi.%%%.x", strange_sub, huge_sub):
            assert_refused_token(*await probe(world, token))


# ------------------------------------------------------------------- Task 3


class TestRefreshTokens:
    """Task 3: refresh tokens rotate, and a reused one revokes its whole family."""

    @pytest.mark.stub_keeps
    @pytest.mark.anyio
    async def test_refresh_gives_a_new_working_pair(self, world: World) -> None:
        """POST /v1/auth/refresh with a fresh refresh token gives 200, a new refresh token and a working access token."""
        first = await tokens(world, "alice")
        response = await world.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert response.status_code == 200, response.text
        pair = response.json()
        assert pair["refresh_token"] != first["refresh_token"]
        me = await world.client.get("/v1/users/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 200
        assert me.json()["username"] == "alice"

    @pytest.mark.anyio
    async def test_refresh_token_reuse_revokes_the_family(self, world: World) -> None:
        """A refresh token used twice is a 401, and the token its first use issued stops working too."""
        first = (await tokens(world, "alice"))["refresh_token"]
        other_login = (await tokens(world, "alice"))["refresh_token"]
        rotated = await world.client.post("/v1/auth/refresh", json={"refresh_token": first})
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["refresh_token"]
        replay = await world.client.post("/v1/auth/refresh", json={"refresh_token": first})
        assert_problem(replay, 401)
        after = await world.client.post("/v1/auth/refresh", json={"refresh_token": second})
        assert after.status_code == 401, "after a reuse, the stolen family's newest token must be revoked too"
        elsewhere = await world.client.post("/v1/auth/refresh", json={"refresh_token": other_login})
        assert elsewhere.status_code == 200, (
            "only the reused token's family ends; another login keeps working"
        )

    @pytest.mark.deep
    @pytest.mark.anyio
    async def test_refresh_token_replayed_concurrently_works_once(self, world: World) -> None:
        """Ten concurrent refreshes with one token, three times over: at most one 200 each time, the others 401."""
        # A lost race needs two reads before the first write commits: several rounds
        # of many racers make that interleaving near certain, on a slow machine too.
        for _ in range(3):
            token = (await tokens(world, "alice"))["refresh_token"]
            statuses: list[int] = []

            async def attempt(token: str = token, statuses: list[int] = statuses) -> None:
                response = await world.client.post("/v1/auth/refresh", json={"refresh_token": token})
                statuses.append(response.status_code)

            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(attempt)
            assert set(statuses) <= {200, 401}, sorted(statuses)
            assert statuses.count(200) <= 1, f"one refresh token was spent {statuses.count(200)} times"

    @pytest.mark.anyio
    async def test_unknown_or_access_token_as_refresh_token_is_refused(self, world: World) -> None:
        """A made-up refresh token, or an access token sent as one, is a 401 problem or a 422."""
        pair = await tokens(world, "alice")
        made_up = await world.client.post(
            "/v1/auth/refresh", json={"refresh_token": secrets.token_urlsafe(32)}
        )
        assert_problem(made_up, 401)
        swapped = await world.client.post("/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
        assert swapped.status_code in (401, 422), swapped.text
        assert_problem(swapped, swapped.status_code)
        # Only the untouched refresh token still works, once.
        ok = await world.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert ok.status_code == 200
        again = await world.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert_problem(again, 401)


# ------------------------------------------------------------------- Task 4


class TestObjectAndFunctionLevel:
    """Task 4: each customer sees only their own orders; admin routes need the admin role."""

    @pytest.mark.stub_keeps
    @pytest.mark.anyio
    async def test_customer_places_reads_changes_and_lists_own_orders(self, world: World) -> None:
        """Own orders: POST 201 with Location, GET 200, PATCH of the note 200, listed on GET /v1/orders."""
        alice = await as_user(world, "alice")
        created = await place_order(world, alice, note="gift wrap")
        assert created.status_code == 201, created.text
        order = created.json()
        assert created.headers["location"] == f"/v1/orders/{order['id']}"
        assert order["unit_price"] == "12.50"
        assert order["quantity"] == 2
        read = await world.client.get(f"/v1/orders/{order['id']}", headers=alice)
        assert read.status_code == 200
        assert read.json()["note"] == "gift wrap"
        changed = await world.client.patch(
            f"/v1/orders/{order['id']}", json={"note": "no wrap"}, headers=alice
        )
        assert changed.status_code == 200
        assert changed.json()["note"] == "no wrap"
        listed = await world.client.get("/v1/orders", headers=alice)
        assert [o["id"] for o in listed.json()["items"]] == [order["id"]]

    @pytest.mark.stub_keeps
    @pytest.mark.anyio
    async def test_admin_with_the_admin_role_lists_users(self, world: World) -> None:
        """An admin's token gives 200 on GET /v1/admin/users, listing every user."""
        response = await world.client.get("/v1/admin/users", headers=await as_user(world, "root"))
        assert response.status_code == 200, response.text
        assert {u["username"] for u in response.json()["items"]} == {"alice", "bob", "root"}

    @pytest.mark.anyio
    async def test_reading_another_customers_order_is_404(self, world: World) -> None:
        """bob reading alice's order gets 404, the same answer as for an order that does not exist."""
        (order_id,) = world.insert_orders("alice", "alice's address")
        bob = await as_user(world, "bob")
        theirs = await world.client.get(f"/v1/orders/{order_id}", headers=bob)
        missing = await world.client.get(f"/v1/orders/{uuid.uuid4()}", headers=bob)
        body = assert_problem(theirs, 404)
        assert "alice" not in theirs.text, "the refusal shows the order's content"
        absent = assert_problem(missing, 404)
        assert {**body, "instance": ""} == {**absent, "instance": ""}, (
            "'not yours' and 'no such order' differ"
        )

    @pytest.mark.anyio
    async def test_changing_another_customers_order_is_404(self, world: World) -> None:
        """bob's PATCH of alice's order gets 404 and the order stays as it was."""
        alice = await as_user(world, "alice")
        (order_id,) = world.insert_orders("alice", "leave at door")
        bob = await as_user(world, "bob")
        response = await world.client.patch(f"/v1/orders/{order_id}", json={"note": "hacked"}, headers=bob)
        assert_problem(response, 404)
        again = await world.client.get(f"/v1/orders/{order_id}", headers=alice)
        assert again.json()["note"] == "leave at door", "bob changed alice's order"

    @pytest.mark.anyio
    async def test_customer_calling_admin_route_is_403(self, world: World) -> None:
        """A customer's valid token on GET /v1/admin/users gets a 403 problem and no user data."""
        response = await world.client.get("/v1/admin/users", headers=await as_user(world, "alice"))
        assert_problem(response, 403)
        assert "bob" not in response.text

    @pytest.mark.anyio
    async def test_customer_token_with_admin_scope_added_is_refused(self, world: World) -> None:
        """alice's token with 'admin' added to its scope claim (signature kept) gets a 401."""
        header, payload, signature = (
            (await as_user(world, "alice"))["Authorization"].removeprefix("Bearer ").split(".")
        )
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["scope"] = "orders admin"
        claims["role"] = "admin"
        forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
        response = await world.client.get("/v1/admin/users", headers=bearer(forged))
        assert_refused_token(response, await world.client.get("/v1/admin/users"))


class TestPropertyLevel:
    """Task 4: clients cannot write fields they do not own, nor read internal ones."""

    @pytest.mark.anyio
    async def test_mass_assignment_of_role_is_refused(self, world: World) -> None:
        """PATCH /v1/users/me with a role gets 422; the role stays 'customer', admin routes stay closed."""
        alice = await as_user(world, "alice")
        response = await world.client.patch(
            "/v1/users/me", json={"display_name": "Alice", "role": "admin"}, headers=alice
        )
        assert_problem(response, 422)
        fresh = await as_user(world, "alice")
        me = await world.client.get("/v1/users/me", headers=fresh)
        assert me.json()["role"] == "customer", "alice made herself an admin"
        assert (await world.client.get("/v1/admin/users", headers=fresh)).status_code == 403
        renamed = await world.client.patch("/v1/users/me", json={"display_name": "Alice"}, headers=fresh)
        assert renamed.status_code == 200
        assert renamed.json()["display_name"] == "Alice"

    @pytest.mark.anyio
    async def test_mass_assignment_of_price_is_refused(self, world: World) -> None:
        """An order naming its own unit_price (or customer) gets 422, and nothing is stored."""
        alice = await as_user(world, "alice")
        for extra in ({"unit_price": "0.01"}, {"customer_id": world.ids["bob"]}):
            response = await place_order(world, alice, **extra)
            assert_problem(response, 422)
        listed = await world.client.get("/v1/orders", headers=alice)
        assert listed.json()["items"] == [], "an order with a client-chosen field was stored"
        (order_id,) = world.insert_orders("alice", "")
        cheaper = await world.client.patch(
            f"/v1/orders/{order_id}", json={"note": "x", "unit_price": "0.01"}, headers=alice
        )
        assert_problem(cheaper, 422)

    @pytest.mark.anyio
    async def test_no_password_hash_or_internal_field_leaks(self, world: World) -> None:
        """User representations have exactly username, display_name and role: no hash, no id."""
        me = await world.client.get("/v1/users/me", headers=await as_user(world, "alice"))
        assert set(me.json()) == USER_KEYS, f"GET /v1/users/me shows {sorted(me.json())}"
        listed = await world.client.get("/v1/admin/users", headers=await as_user(world, "root"))
        for user in listed.json()["items"]:
            assert set(user) == USER_KEYS, f"GET /v1/admin/users shows {sorted(user)}"
        for response in (me, listed):
            assert "$argon2" not in response.text
            assert "password" not in response.text


# ------------------------------------------------------------------- Task 5


class TestInjection:
    """Task 5: the order search treats its input as data, never as SQL."""

    @pytest.mark.anyio
    async def test_sql_injection_in_search_returns_only_own_orders(self, world: World) -> None:
        """Searches like "%' OR 1=1 --" give 200 with none of another customer's orders, never a 500."""
        world.insert_orders("bob", "bob's secret address")
        world.insert_orders("alice", "alice gift")
        alice = await as_user(world, "alice")
        attacks = (
            "%' OR 1=1 --",
            "' OR '1'='1",
            "x' UNION SELECT * FROM users --",
            "'; DROP TABLE orders; --",
        )
        for attack in attacks:
            response = await world.client.get("/v1/orders", params={"search": attack}, headers=alice)
            assert response.status_code == 200, (
                f"search {attack!r}: {response.status_code} {shown(response)[:200]}"
            )
            assert "bob" not in response.text, (
                f"search {attack!r} returned bob's order: {shown(response)[:200]}"
            )
            assert response.json()["items"] == [], f"search {attack!r} matched {response.json()['items']}"
        everything = await world.client.get("/v1/orders", headers=alice)
        assert [o["note"] for o in everything.json()["items"]] == ["alice gift"]

    @pytest.mark.anyio
    async def test_search_matches_its_text_literally(self, world: World) -> None:
        """Search '100%' finds only notes containing '100%'; '_' and '\\' are plain characters too."""
        alice = await as_user(world, "alice")
        world.insert_orders("alice", "100% cotton", "1000 cotton", "a_b", "axb", "back\\slash", "backslash")
        expected = {"100%": ["100% cotton"], "a_b": ["a_b"], "k\\s": ["back\\slash"]}
        for search, notes in expected.items():
            response = await world.client.get("/v1/orders", params={"search": search}, headers=alice)
            assert response.status_code == 200, response.text
            found = sorted(o["note"] for o in response.json()["items"])
            assert found == notes, f"search {search!r} found {found}, expected {notes}"


# ------------------------------------------------------------------- Task 6


@pytest.fixture
async def limited(seeded: Seeded) -> AsyncIterator[World]:
    """A world with small login limits, in Redis when COURSE_REDIS_URL is set."""
    prefix = f"{runs.learner_name()}:{runs.run_id()}:ex06:{secrets.token_hex(4)}"
    settings = make_settings(
        login_limit_per_user=4, login_limit_per_client=7, login_window_s=60.0,
        redis_url=redis_url(), redis_prefix=prefix,
    )  # fmt: skip
    restore(seeded)
    try:
        async with serve("ex06", settings, seeded.ids, seeded.book_id) as built:
            built.sync = seeded.engine
            yield built
    finally:
        await delete_redis_keys(prefix)


async def delete_redis_keys(prefix: str) -> None:
    url = redis_url()
    if url is None:
        return
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def assert_rate_limited(response: httpx.Response, window_s: float) -> None:
    __tracebackhide__ = True
    assert_problem(response, 429)
    retry_after = response.headers.get("retry-after", "")
    if not retry_after.isdigit() or not 1 <= int(retry_after) <= window_s:
        pytest.fail(f"a 429 needs Retry-After: whole seconds, 1..{window_s:.0f}; got {retry_after!r}")


@pytest.mark.redis
class TestRateLimits:
    """Task 6: logins limited per account and per client, all requests per client: 429, Retry-After."""

    @pytest.mark.anyio
    async def test_brute_force_on_one_account_hits_the_limit(self, limited: World) -> None:
        """4 guesses at alice's password from 4 different clients, then 429, even for the right password."""
        for attempt in range(4):
            async with limited.client_from(f"10.0.0.{attempt + 1}") as client:
                assert_problem(await login(client, "alice", f"guess {attempt}"), 401)
        async with limited.client_from("10.0.0.9") as client:
            assert_rate_limited(await login(client, "alice", "guess 5"), 60)
            assert_rate_limited(await login(client, "alice"), 60)
        async with limited.client_from("10.0.0.10") as client:
            assert (await login(client, "bob")).status_code == 200, "bob's account is not under attack"

    @pytest.mark.anyio
    async def test_password_spraying_from_one_client_hits_the_limit(self, limited: World) -> None:
        """7 guesses from one client over 7 usernames, then 429 for that client; other clients still log in."""
        async with limited.client_from("10.1.0.1") as client:
            for attempt in range(7):
                assert_problem(await login(client, f"user{attempt}", "Winter2024!"), 401)
            assert_rate_limited(await login(client, "alice"), 60)
        async with limited.client_from("10.1.0.2") as client:
            assert (await login(client, "alice")).status_code == 200

    @pytest.mark.anyio
    async def test_every_request_counts_against_its_clients_limit(self, seeded: Seeded) -> None:
        """With request_limit_per_client=3: 3 answers carry RateLimit-Limit: 3, the 4th is a 429; other clients go on."""
        restore(seeded)
        prefix = f"{runs.learner_name()}:{runs.run_id()}:ex06:{secrets.token_hex(4)}"
        settings = make_settings(request_limit_per_client=3, redis_url=redis_url(), redis_prefix=prefix)
        try:
            async with serve("ex06", settings, seeded.ids, seeded.book_id) as world:
                alice = await as_user(world, "alice")
                async with world.client_from("10.2.0.1") as client:
                    for _ in range(3):
                        response = await client.get("/v1/users/me", headers=alice)
                        assert response.status_code == 200, shown(response)
                        assert response.headers.get("ratelimit-limit") == "3", dict(response.headers)
                        assert response.headers.get("ratelimit-reset", "").isdigit(), dict(response.headers)
                    assert_rate_limited(await client.get("/v1/users/me", headers=alice), 60)
                async with world.client_from("10.2.0.2") as client:
                    assert (await client.get("/v1/users/me", headers=alice)).status_code == 200
        finally:
            await delete_redis_keys(prefix)

    @pytest.mark.anyio
    async def test_rate_limiter_allows_exactly_the_limit_per_key(self) -> None:
        """RateLimiter(3, 60).hit(key): 0.0 three times, then the wait (0 < wait <= 60); keys are independent."""
        for store in stores():  # in process, and Redis when COURSE_REDIS_URL is set
            prefix = f"{runs.learner_name()}:{runs.run_id()}:ex06:{secrets.token_hex(4)}:"
            limiter = ex.RateLimiter(3, 60.0, store, prefix)
            try:
                assert [await limiter.hit("k") for _ in range(3)] == [0.0, 0.0, 0.0], store or "in process"
                wait = await limiter.hit("k")
                assert 0 < wait <= 60, (store or "in process", wait)
                assert await limiter.hit("other") == 0.0, store or "in process"
            finally:
                await limiter.aclose()
                await delete_redis_keys(prefix)

    @pytest.mark.deep
    @pytest.mark.anyio
    async def test_attempts_are_allowed_again_after_the_window(self) -> None:
        """With a 0.3 s window, the 3rd hit waits, and 0.35 s later hits are allowed again."""
        for store in stores():
            prefix = f"{runs.learner_name()}:{runs.run_id()}:ex06:{secrets.token_hex(4)}:"
            limiter = ex.RateLimiter(2, 0.3, store, prefix)
            try:
                assert [await limiter.hit("k") for _ in range(2)] == [0.0, 0.0]
                wait = await limiter.hit("k")
                assert 0 < wait <= 0.3, (store or "in process", wait)
                await anyio.sleep(0.35)
                assert await limiter.hit("k") == 0.0, (
                    f"{store or 'in process'}: the window slid on, the key is still blocked"
                )
            finally:
                await limiter.aclose()
                await delete_redis_keys(prefix)

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_two_processes_share_one_limit(self) -> None:
        """Two processes with 40 concurrent hits each on one key through Redis are allowed 25 in total."""
        url = redis_url()
        if url is None:
            pytest.skip(f"needs a Redis server shared by both processes: set {REDIS_URL_ENV}")
        prefix = f"{runs.learner_name()}:{runs.run_id()}:ex06:{secrets.token_hex(4)}:"
        script = textwrap.dedent(
            f"""
            import sys
            import anyio
            from coursekit.impl import load
            ex = load("ex06_auth_security")

            async def main():
                limiter = ex.RateLimiter(25, 60.0, {url!r}, {prefix!r})
                await limiter.hit("warm-up")  # connect before the race starts
                print("ready", flush=True)
                sys.stdin.readline()  # both processes start hitting at the same moment
                waits = []

                async def attempt():
                    waits.append(await limiter.hit("shared"))

                async with anyio.create_task_group() as group:  # 40 hits in flight at once
                    for _ in range(40):
                        group.start_soon(attempt)
                await limiter.aclose()
                print(waits.count(0.0), flush=True)

            anyio.run(main)
            """
        )
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                if worker.stdout.readline().strip() != "ready":
                    error = worker.communicate(timeout=10)[1].strip().splitlines() or ["no output"]
                    pytest.fail(f"a worker process failed: {error[-1]}", pytrace=False)
            for worker in workers:  # release both before waiting for either
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            results = [worker.communicate(timeout=20) for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
            anyio.run(delete_redis_keys, prefix)
        for worker, (_, error) in zip(workers, results, strict=True):
            assert worker.returncode == 0, f"a worker process failed: {error.strip().splitlines()[-1:]}"
        counts = [int(out.strip().splitlines()[-1]) for out, _ in results]
        assert sum(counts) == 25, f"allowed {counts} = {sum(counts)} hits in total, the limit is 25"


# ------------------------------------------------------------------- Task 7


@functools.cache
def openapi_document() -> dict[str, Any]:
    # Building the document opens no connection: an engine that is never used is enough.
    app = ex.create_app(db.make_async_engine("ex06", poolclass=NullPool), make_settings())
    document: dict[str, Any] = app.openapi()
    return document


class TestOpenAPI:
    """Task 7: the OpenAPI document declares security, errors and limits; fuzzing and lint pass."""

    def test_security_scheme_and_protected_operations(self) -> None:
        """An OAuth2 password scheme (token URL /v1/auth/token) protects every operation but the two auth ones."""
        document = openapi_document()
        schemes = document.get("components", {}).get("securitySchemes", {})
        flows = [
            s["flows"]["password"]
            for s in schemes.values()
            if s.get("type") == "oauth2" and "password" in s.get("flows", {})
        ]
        assert flows, f"no OAuth2 password flow: {schemes}"
        assert flows[0]["tokenUrl"] == "/v1/auth/token", flows
        for path, item in document["paths"].items():
            for method, operation in item.items():
                # [{}] states "no credentials needed": not a protection.
                protected = any(requirement for requirement in operation.get("security", []))
                assert protected == (not path.startswith("/v1/auth/")), f"{method.upper()} {path} security"

    def test_errors_are_declared_as_problem_details(self) -> None:
        """401, 422 and 429 everywhere, 403 on order and admin routes, 404 on one order; RateLimit headers on every answer."""
        document = openapi_document()
        for path, item in document["paths"].items():
            for method, operation in item.items():
                wanted = {"401", "422"}
                if path.startswith(("/v1/orders", "/v1/admin")):
                    wanted |= {"403"}
                if "{order_id}" in path:
                    wanted |= {"404"}
                wanted |= {"429"}  # the request limit applies everywhere
                responses = operation["responses"]
                missing = wanted - responses.keys()
                assert not missing, f"{method.upper()} {path} does not declare {sorted(missing)}"
                for status in wanted:
                    content = responses[status].get("content", {})
                    assert set(content) == {PROBLEM_JSON}, (
                        f"{method.upper()} {path} {status}: {sorted(content)}"
                    )
                for status, response in responses.items():
                    declared = set(response.get("headers", {}))
                    assert {"RateLimit-Limit", "RateLimit-Reset"} <= declared, (
                        f"{method.upper()} {path} {status}"
                    )
                assert "Retry-After" in responses["429"].get("headers", {}), (
                    f"{method.upper()} {path}: 429 lacks Retry-After"
                )

    def test_order_ids_are_uuids_and_every_input_is_bounded(self) -> None:
        """Order ids in paths are UUIDs; every string input has a maxLength, every integer bounds."""
        document = openapi_document()
        for path, item in document["paths"].items():
            for method, operation in item.items():
                for parameter in operation.get("parameters", []):
                    schema = parameter["schema"]
                    where = f"{method.upper()} {path} parameter {parameter['name']}"
                    if parameter["in"] == "path":
                        assert schema.get("format") == "uuid", f"{where} is not a UUID: {schema}"
                    elif schema.get("type") == "string":
                        assert "maxLength" in schema, f"{where} has no maxLength"
                    elif schema.get("type") == "integer":
                        assert {"minimum", "maximum"} <= schema.keys(), f"{where} has no bounds"
        login_form = document["components"]["schemas"]
        form = next(v for k, v in login_form.items() if k.startswith("Body_login"))
        for name in ("username", "password"):
            assert "maxLength" in form["properties"][name], f"login {name} has no maxLength"


class TestOpenAPILint:
    """Task 7: Spectral's OWASP API Security ruleset finds no error in the document."""

    @pytest.mark.deep
    @pytest.mark.time_limit(60)
    def test_owasp_ruleset_finds_no_error(self) -> None:
        """Spectral (spectral:oas + OWASP API Security 2023) reports 0 errors on your OpenAPI document."""
        from coursekit import spectral

        if not spectral.available():
            if spectral.required():
                pytest.fail(f"{spectral.REQUIRE_ENV} is set but {spectral.INSTALL_HINT}", pytrace=False)
            pytest.skip(spectral.INSTALL_HINT)
        errors = [f for f in spectral.lint_openapi(openapi_document()) if f.severity == "error"]
        assert not errors, "\n".join(f"{f.code} at {f.path}: {f.message}" for f in errors[:10])


class TestFuzzing:
    """Task 7: a schemathesis fuzz of the secured app finds no server error."""

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_fuzzing_finds_no_server_error(self) -> None:
        """Generated requests (valid and invalid, with a customer's token) never get a 5xx or an undocumented answer."""
        import schemathesis
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st
        from schemathesis import GenerationMode
        from schemathesis.specs.openapi.checks import positive_data_acceptance

        app_settings = make_settings()
        db.reset_database("ex06fuzz")
        ids, _ = anyio.run(create_and_seed, "ex06fuzz", app_settings)
        # NullPool: schemathesis drives the app from its own event loop, so no connection
        # may outlive the request that opened it.
        engine = db.make_async_engine("ex06fuzz", poolclass=NullPool)
        app = ex.create_app(engine, app_settings)
        token = jwt.encode(
            {"iss": app_settings.issuer, "aud": app_settings.audience, "sub": str(ids["alice"]), "iat": int(time.time()),
             "exp": int(time.time()) + 600, "jti": "fuzz", "scope": "orders"},
            SERVER_KEY, algorithm="RS256",
        )  # fmt: skip
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        failures: list[str] = []
        for operation_result in schema.get_all_operations():
            operation = operation_result.ok()
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            )

            @given(case=cases)
            @settings(
                max_examples=25, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            def fuzz(case: Any) -> None:
                case.call_and_validate(headers=bearer(token), excluded_checks=[positive_data_acceptance])

            try:
                fuzz()
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
        anyio.run(engine.dispose)
        assert not failures, "\n".join(failures)
