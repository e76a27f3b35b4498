"""ex03 · Catalog and orders API to a written spec.

The contract is the docstring of ``exercises/ex03_rest_api.py``. Every test
builds a fresh app, talks to it in-process over httpx, and checks what a client
would see: status codes, headers, bodies, and what the card processor was asked
to charge. Idempotency races run for real: concurrent requests through one
client on one event loop, with the charge awaiting in between. The deep stage
adds a jittered race and a schemathesis fuzz of the app's own OpenAPI document.
"""

from __future__ import annotations

import base64
import functools
import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import httpx
import pytest

from coursekit.impl import load

ex = load("ex03_rest_api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
VALIDATION_TYPE = "https://bookstore.example/problems/validation-error"
# RFC 9110 reason phrases: what "title" must say when "type" is about:blank.
PHRASES = {
    400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    422: "Unprocessable Content",
}  # fmt: skip
BOOK_KEYS = {"id", "isbn", "title", "author", "genre", "price"}
ORDER_KEYS = {"id", "lines", "total"}
LINE_KEYS = {"book_id", "quantity", "unit_price"}
GENRE_CYCLE = ("poetry", "science", "travel")
GUARD_S = 2.0  # a request that should answer at once but waits this long has hung


# ------------------------------------------------------------------- helpers


def isbn13(n: int) -> str:
    """A valid ISBN-13: 978 + nine digits from n + the check digit."""
    body = f"978{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def book_payload(n: int, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "isbn": isbn13(n),
        "title": f"Book {n:03d}",
        "author": "Ada Writer",
        "genre": GENRE_CYCLE[n % 3],
        "price": f"{5 + n % 4}.99",  # repeating prices: ties that the id must break
    }
    payload.update(changes)
    return payload


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@contextmanager
def case(label: str) -> Iterator[None]:
    """Name the case in the failure message of a test that loops over several."""
    __tracebackhide__ = True
    try:
        yield
    except (AssertionError, pytest.fail.Exception) as exc:
        pytest.fail(f"{label}: {exc}", pytrace=False)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; return its body."""
    __tracebackhide__ = True
    if response.status_code != status:
        pytest.fail(f"expected status {status}, got {response.status_code}: {response.text[:300]}")
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith(PROBLEM_JSON):
        pytest.fail(f"Content-Type is {content_type!r}, expected {PROBLEM_JSON}")
    body = response.json()
    if not isinstance(body, dict):
        pytest.fail(f"a problem body is a JSON object, got {body!r}")
    missing = PROBLEM_KEYS - body.keys()
    if missing:
        pytest.fail(f"problem body lacks {sorted(missing)}: {body}")
    if body["status"] != status:
        pytest.fail(f"'status' is {body['status']!r} but the response status is {status}")
    for member in ("type", "title", "detail"):
        if not isinstance(body[member], str) or (member != "detail" and not body[member]):
            pytest.fail(f"{member!r} must be a non-empty string: {body}")
    if body["instance"] != response.request.url.path:
        pytest.fail(f"'instance' is {body['instance']!r}, expected {response.request.url.path!r}")
    if body["type"] == "about:blank" and body["title"] != PHRASES.get(status, body["title"]):
        pytest.fail(
            f"type is about:blank, so title must be the RFC 9110 phrase {PHRASES[status]!r}, "
            f"not {body['title']!r}"
        )
    if body["type"] == "about:blank" and "errors" in body:
        pytest.fail("about:blank defines no extension members: 'errors' needs a type of its own")
    return body


def assert_validation_problem(response: httpx.Response, field: str) -> dict[str, Any]:
    """A request-validation problem whose ``errors`` name ``field`` in some ``loc``."""
    __tracebackhide__ = True
    body = assert_problem(response, 422)
    if body["type"] != VALIDATION_TYPE:
        pytest.fail(f"a validation problem has type {VALIDATION_TYPE!r}, got {body['type']!r}")
    if body["title"] != PHRASES[422]:
        pytest.fail(f"a validation problem has title {PHRASES[422]!r}, got {body['title']!r}")
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors:
        pytest.fail(f"a validation problem needs a non-empty 'errors' list: {body}")
    for error in errors:
        if not isinstance(error, dict) or set(error) != {"loc", "msg", "type"}:
            pytest.fail(f"each entry of 'errors' has exactly loc, msg and type: {error}")
        if not isinstance(error["loc"], list):
            pytest.fail(f"'loc' is a list: {error}")
    locs = [[str(part).lower() for part in error["loc"]] for error in errors]
    if not any(field.lower() in loc for loc in locs):
        pytest.fail(f"no entry of 'errors' has {field!r} in its loc: {locs}")
    return body


async def create_books(client: httpx.AsyncClient, count: int, **changes: Any) -> list[dict[str, Any]]:
    created = []
    for n in range(1, count + 1):
        response = await client.post("/v1/books", json=book_payload(n, **changes))
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


async def walk(client: httpx.AsyncClient, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow next_cursor from the first page to the end: (all items, number of pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    query = dict(params)
    while True:
        response = await client.get("/v1/books", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items, pages
        assert pages < 100, "pagination never ends"
        query = {**params, "cursor": page["next_cursor"]}


async def place_order(client: httpx.AsyncClient, lines: list[dict[str, int]], key: str) -> httpx.Response:
    return await client.post("/v1/orders", json={"lines": lines}, headers={"Idempotency-Key": key})


async def count_orders(client: httpx.AsyncClient) -> int:
    """Ids are 1, 2, 3, ... and errors or replays use up none, so a new order's id says it.

    Needs book 1; places (and charges) one order of its own.
    """
    response = await place_order(client, [{"book_id": 1, "quantity": 1}], key="counting-probe")
    assert response.status_code == 201, response.text
    return int(response.json()["id"]) - 1


class AppCrashed(Exception):
    """The app raised instead of answering (a stub's NotImplementedError, a bug)."""


class CrashReportingTransport(httpx.ASGITransport):
    """Re-raise app exceptions as one short line, without the deep ASGI stack."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except Exception as exc:
            crash = f"{request.method} {request.url.path} raised {type(exc).__name__}: {exc}"
            raise AppCrashed(crash) from None


def make_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=CrashReportingTransport(app=app), base_url="http://test")


@pytest.fixture
def gateway() -> Any:
    return ex.PaymentGateway(latency=0.001)


@pytest.fixture
async def client(gateway: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(ex.create_app(gateway)) as http:
        yield http


class HeldGateway(ex.PaymentGateway):  # type: ignore[misc]
    """Holds the first charge until the test releases it: a request the test keeps in flight.

    Later charges go through at once. Create it inside the test (its events need the loop).
    """

    def __init__(self) -> None:
        super().__init__(latency=0)
        self.calls = 0
        self.entered = anyio.Event()
        self.release = anyio.Event()

    async def charge(self, amount: Decimal) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            await self.release.wait()
        await super().charge(amount)


async def wait_until_charging(gateway: HeldGateway) -> None:
    __tracebackhide__ = True
    with anyio.move_on_after(GUARD_S):
        await gateway.entered.wait()
    if not gateway.entered.is_set():
        pytest.fail("the order was never charged through the PaymentGateway given to create_app")


# ------------------------------------------------------------------- 1. problems


@pytest.mark.anyio
class TestProblemDetails:
    """Task 1: every error is an RFC 9457 problem (application/problem+json)."""

    async def test_unknown_path_or_method_is_a_problem(self, client: httpx.AsyncClient) -> None:
        """An unknown path gives a 404 problem; a method the path lacks a 405 whose Allow lists all it has."""
        with case("GET /v1/no-such-thing"):
            assert_problem(await client.get("/v1/no-such-thing"), 404)
        for method, path, expected in (
            ("DELETE", "/v1/books/1", {"GET", "PATCH"}),
            ("PUT", "/v1/orders", {"POST"}),
        ):
            with case(f"{method} {path}"):
                response = await client.request(method, path)
                assert_problem(response, 405)
                allow = response.headers.get("allow", "")
                allowed = {m.strip().upper() for m in allow.split(",") if m.strip()}
                assert allowed == expected, f"Allow: {allow!r}, expected {sorted(expected)}"

    async def test_non_integer_id_is_a_validation_problem(self, client: httpx.AsyncClient) -> None:
        """GET /v1/books/abc is a 422 validation-error problem naming book_id, not echoing the value."""
        response = await client.get("/v1/books/hunter2-secret")
        body = assert_validation_problem(response, "book_id")
        del body["instance"]  # the request's own path, which holds the value
        assert "hunter2" not in json.dumps(body), f"the rejected value is sent back: {body}"
        with case("GET /v1/orders/1.5"):
            assert_validation_problem(await client.get("/v1/orders/1.5"), "order_id")


# ------------------------------------------------------------------- 2. books


@pytest.mark.anyio
class TestBooks:
    """Task 2: create and read books; validation; no leaked fields; no mass assignment."""

    async def test_create_returns_201_location_and_the_book(self, client: httpx.AsyncClient) -> None:
        """POST gives 201, Location /v1/books/1 and exactly the public keys; GET there agrees; GET /v1/books/2 is a 404."""
        response = await client.post("/v1/books", json=book_payload(1, price="12.5"))
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == BOOK_KEYS, body
        assert (body["id"], body["isbn"], body["price"]) == (1, isbn13(1), "12.50")
        assert urlsplit(response.headers.get("location", "")).path == "/v1/books/1"
        fetched = await client.get("/v1/books/1")
        assert fetched.status_code == 200, fetched.text
        assert fetched.json() == body
        for text in (response.text, fetched.text):
            assert "cost_price" not in text, text
            assert "created_by" not in text, text
        assert_problem(await client.get("/v1/books/2"), 404)

    async def test_values_are_normalised(self, client: httpx.AsyncClient) -> None:
        """A price (number or string) comes back with two decimals; title and author are stripped."""
        for n, (price, shown) in enumerate(
            [(12.5, "12.50"), ("7", "7.00"), (0, "0.00"), ("0.10", "0.10"), ("999999.99", "999999.99")],
            start=1,
        ):
            with case(f"price {price!r}"):
                response = await client.post("/v1/books", json=book_payload(n, price=price))
                assert response.status_code == 201, response.text
                assert response.json()["price"] == shown
        response = await client.post(
            "/v1/books", json=book_payload(9, title="  Dune  ", author=" Frank Herbert ")
        )
        assert response.status_code == 201, response.text
        assert (response.json()["title"], response.json()["author"]) == ("Dune", "Frank Herbert")

    async def test_duplicate_isbn_is_a_409_problem(self, client: httpx.AsyncClient) -> None:
        """A second book with the same ISBN gives 409; nothing is stored, no id is used up."""
        [first] = await create_books(client, 1)
        assert_problem(await client.post("/v1/books", json=book_payload(1, title="Other")), 409)
        assert (await client.get("/v1/books/1")).json() == first
        created = await client.post("/v1/books", json=book_payload(2))
        assert created.status_code == 201, created.text
        assert created.json()["id"] == 2

    async def test_invalid_body_is_a_422_problem(self, client: httpx.AsyncClient) -> None:
        """Each invalid or missing field (or a body that is not JSON) gives a 422 naming it, never echoing it."""
        missing = object()
        cases: list[tuple[str, object]] = [
            ("isbn", "9780306406158"),  # wrong check digit (…157 is right)
            ("isbn", "978030640615"),  # 12 digits
            ("isbn", "978-0-306-40615-7"),  # hyphens
            ("isbn", "97803064061X7"),  # a letter
            ("isbn", "٩٧٨٠٣٠٦٤٠٦١٥٧"),  # Arabic-Indic digits: \d matches them, [0-9] does not
            ("title", ""),
            ("title", "   "),
            ("title", "hunter2-" + "x" * 300),  # too long, and a secret: never sent back
            ("author", "a" * 121),
            ("genre", "horror"),
            ("price", -1),
            ("price", "12.345"),
            ("price", "cheap"),
            ("price", "NaN"),
            ("price", "1000000.00"),
            ("price", missing),
        ]
        for field, value in cases:
            label = f"missing {field}" if value is missing else f"{field}={str(value)[:20]!r}"
            with case(label):
                payload = book_payload(1, **{field: value})
                if value is missing:
                    del payload[field]
                response = await client.post("/v1/books", json=payload)
                assert_validation_problem(response, field)
                if isinstance(value, str) and len(value) > 4:
                    assert value not in response.text, "the rejected value is sent back"
        with case("a body that is not JSON"):
            response = await client.post(
                "/v1/books", content=b'{"isbn": ', headers={"content-type": "application/json"}
            )
            assert_validation_problem(response, "body")
        assert_problem(await client.get("/v1/books/1"), 404)

    async def test_mass_assignment_is_rejected(self, client: httpx.AsyncClient) -> None:
        """An unknown key (id, cost_price, created_by, role) gives a 422 naming it; no book."""
        for extra in ({"id": 999}, {"cost_price": "0.01"}, {"created_by": "x"}, {"role": "a"}):
            with case(f"extra key {extra}"):
                response = await client.post("/v1/books", json={**book_payload(1), **extra})
                assert_validation_problem(response, next(iter(extra)))
        assert_problem(await client.get("/v1/books/1"), 404)


# ------------------------------------------------------------------- 3. PATCH


@pytest.mark.anyio
class TestPartialUpdate:
    """Task 3: PATCH changes only what was sent, validates it, and rejects the rest."""

    async def test_patch_changes_only_sent_fields(self, client: httpx.AsyncClient) -> None:
        """PATCH {"price": "9.5"} changes the price, keeps every other field, leaks nothing; unknown id: 404."""
        [before] = await create_books(client, 1)
        response = await client.patch("/v1/books/1", json={"price": "9.5"})
        assert response.status_code == 200, response.text
        assert response.json() == {**before, "price": "9.50"}
        assert "cost_price" not in response.text
        assert "created_by" not in response.text
        assert (await client.get("/v1/books/1")).json() == {**before, "price": "9.50"}
        with case("PATCH /v1/books/7"):
            assert_problem(await client.patch("/v1/books/7", json={"title": "X"}), 404)

    async def test_invalid_patch_is_a_422_and_changes_nothing(self, client: httpx.AsyncClient) -> None:
        """An invalid value, a null, or a key that is not editable gives 422; nothing changes."""
        [before] = await create_books(client, 1)
        changes: list[dict[str, Any]] = [
            {"price": "-1"}, {"genre": "horror"}, {"title": ""}, {"title": None},
            {"price": None}, {"isbn": isbn13(99)}, {"id": 5}, {"cost_price": "0.01"},
            {"created_by": "mallory"}, {"title": "Fine", "role": "admin"},
        ]  # fmt: skip
        for change in changes:
            with case(f"PATCH {change}"):
                response = await client.patch("/v1/books/1", json=change)
                assert_validation_problem(response, list(change)[-1])
        assert (await client.get("/v1/books/1")).json() == before, "a refused PATCH changed the book"


# ------------------------------------------------------------------- 4. pagination


def expected_order(books: list[dict[str, Any]], sort: str) -> list[int]:
    field = sort.lstrip("-")

    def key(book: dict[str, Any]) -> tuple[Any, int]:
        value = Decimal(book["price"]) if field == "price" else book[field]
        return (value, book["id"])

    return [b["id"] for b in sorted(books, key=key, reverse=sort.startswith("-"))]


# Text order and number order disagree here: "10.00" < "100.00" < "9.99" as text.
SORT_PRICES = ["10.00", "9.99", "100.00", "9.99", "10.00", "0.50",
               "9.99", "100.00", "1.00", "10.00", "99.99", "9.99"]  # fmt: skip


@pytest.mark.anyio
class TestPagination:
    """Task 4: keyset pagination with opaque cursors, a genre filter and whitelisted sorts."""

    async def test_pages_hold_every_book_once(self, client: httpx.AsyncClient) -> None:
        """Pages of 20 public books by default (or of limit), each book once, no empty last page."""
        with case("an empty store"):
            response = await client.get("/v1/books")
            assert response.status_code == 200, response.text
            assert response.json() == {"items": [], "next_cursor": None}
        await create_books(client, 21)
        response = await client.get("/v1/books")
        assert response.status_code == 200, response.text
        first = response.json()
        assert [b["id"] for b in first["items"]] == list(range(1, 21))
        assert all(set(b) == BOOK_KEYS for b in first["items"]), first["items"][0]
        assert "cost_price" not in response.text
        assert "created_by" not in response.text
        assert isinstance(first["next_cursor"], str)
        second = (await client.get("/v1/books", params={"cursor": first["next_cursor"]})).json()
        assert [b["id"] for b in second["items"]] == [21]
        assert second["next_cursor"] is None
        with case("limit=7 (the last page is full)"):
            items, walked = await walk(client, limit=7)
            assert [b["id"] for b in items] == list(range(1, 22))
            assert walked == 3, f"{walked} pages, expected 3"

    async def test_every_sort_is_stable_across_pages(self, client: httpx.AsyncClient) -> None:
        """Each sort walks all books by (field, id), both in its direction; numbers as numbers."""
        rng = random.Random(3)
        books = []
        for n, price in enumerate(SORT_PRICES, start=1):
            title = rng.choice(["Atlas", "Beacon", "Cinder"])  # ties on purpose
            response = await client.post("/v1/books", json=book_payload(n, title=title, price=price))
            assert response.status_code == 201, response.text
            books.append(response.json())
        for sort in ex.SORTS:
            with case(f"sort={sort}"):
                items, _ = await walk(client, limit=5, sort=sort)
                assert [b["id"] for b in items] == expected_order(books, sort)

    async def test_genre_filter_holds_across_pages(self, client: httpx.AsyncClient) -> None:
        """genre=science with limit=2 walks exactly the science books."""
        books = await create_books(client, 7)
        items, _ = await walk(client, limit=2, genre="science")
        assert [b["id"] for b in items] == [b["id"] for b in books if b["genre"] == "science"]

    async def test_inserts_while_paging_cause_no_repeats(self, client: httpx.AsyncClient) -> None:
        """Cheap books added mid-walk (sort=price) make no old book repeat or vanish."""
        originals = await create_books(client, 7)
        first = (await client.get("/v1/books", params={"sort": "price", "limit": 3})).json()
        for n in range(100, 104):  # cheaper than everything seen so far
            await client.post("/v1/books", json=book_payload(n, price="1.00"))
        seen = [b["id"] for b in first["items"]]
        cursor = first["next_cursor"]
        while cursor is not None:
            params = {"sort": "price", "limit": 3, "cursor": cursor}
            page = (await client.get("/v1/books", params=params)).json()
            seen.extend(b["id"] for b in page["items"])
            cursor = page["next_cursor"]
        assert len(seen) == len(set(seen)), f"a book was returned twice: {seen}"
        assert {b["id"] for b in originals} <= set(seen), f"a book was skipped: {seen}"

    async def test_query_parameters_are_whitelisted_and_bounded(self, client: httpx.AsyncClient) -> None:
        """limit is 1-100; sort and genre take only their listed values; else a 422 problem."""
        cases = [
            *({"limit": value} for value in ("0", "101", "-1", "ten")),
            *({"sort": value} for value in ("cost_price", "isbn", "price desc", "id;--")),
            *({"genre": value} for value in ("horror", "fiction' OR '1'='1")),
        ]
        for params in cases:
            with case(f"?{params}"):
                response = await client.get("/v1/books", params=params)
                assert_validation_problem(response, next(iter(params)))

    async def test_foreign_cursor_is_a_400_problem(self, client: httpx.AsyncClient) -> None:
        """A cursor the API did not issue, or issued for another sort or genre, gives a 400 problem."""
        await create_books(client, 4)
        page = (await client.get("/v1/books", params={"sort": "price", "limit": 2})).json()
        for params in ({"sort": "title"}, {"sort": "price", "genre": "poetry"}):
            with case(f"a sort=price cursor with {params}"):
                response = await client.get("/v1/books", params={**params, "cursor": page["next_cursor"]})
                assert_problem(response, 400)
        cases = [
            ("garbage", "not a cursor!", "id"),
            ("short", "AAAA", "id"),
            ("non-ascii", "é", "id"),
            ("not-json", b64(b"not json"), "id"),
            ("json-list", b64(b"[1, 2, 3]"), "id"),
            ("wrong-keys", b64(b'{"x": 1}'), "id"),
            ("id-not-int", b64(b'{"sort": "id", "genre": null, "value": "1", "id": "one"}'), "id"),
            ("price-text", b64(b'{"sort": "price", "genre": null, "value": "a", "id": 1}'), "price"),
            ("price-nan", b64(b'{"sort": "price", "genre": null, "value": "NaN", "id": 1}'), "price"),
        ]  # fmt: skip
        for label, cursor, sort in cases:
            with case(label):
                response = await client.get("/v1/books", params={"cursor": cursor, "sort": sort})
                assert_problem(response, 400)

    async def test_cursors_for_the_longest_titles_work(self, client: httpx.AsyncClient) -> None:
        """Walking sort=title over 200-character non-Latin titles accepts every cursor issued."""
        titles = ["書" * 199 + "a", "😀" * 199 + "b", "\u0001" * 199 + "c"]
        for n, title in enumerate(titles, start=1):
            response = await client.post("/v1/books", json=book_payload(n, title=title))
            assert response.status_code == 201, response.text
        for sort in ("title", "-title"):
            with case(f"sort={sort}"):
                items, _ = await walk(client, limit=1, sort=sort)
                assert len(items) == 3


# ------------------------------------------------------------------- 5. orders


@pytest.mark.anyio
class TestOrders:
    """Task 5: orders priced and charged by the server from current book prices."""

    async def test_create_order_returns_201_location_and_total(
        self, client: httpx.AsyncClient, gateway: Any
    ) -> None:
        """POST gives 201, Location /v1/orders/1, the books' prices, an exact total, one charge; GET agrees."""
        await client.post("/v1/books", json=book_payload(1, price="12.50"))
        await client.post("/v1/books", json=book_payload(2, price="0.10"))
        response = await place_order(
            client, [{"book_id": 1, "quantity": 2}, {"book_id": 2, "quantity": 3}], key="o-1"
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == ORDER_KEYS, body
        assert body["id"] == 1
        assert all(set(line) == LINE_KEYS for line in body["lines"]), body
        assert [(x["book_id"], x["quantity"], x["unit_price"]) for x in body["lines"]] == [
            (1, 2, "12.50"),
            (2, 3, "0.10"),
        ]
        assert body["total"] == "25.30"
        assert urlsplit(response.headers.get("location", "")).path == "/v1/orders/1"
        assert gateway.charges == [Decimal("25.30")], "the total is charged exactly once"
        fetched = await client.get("/v1/orders/1")
        assert fetched.status_code == 200, fetched.text
        assert fetched.json() == body
        with case("GET /v1/orders/2"):
            assert_problem(await client.get("/v1/orders/2"), 404)

    async def test_later_price_change_does_not_rewrite_orders(self, client: httpx.AsyncClient) -> None:
        """An order keeps the unit price of the moment it was placed."""
        await client.post("/v1/books", json=book_payload(1, price="10.00"))
        created = await place_order(client, [{"book_id": 1, "quantity": 2}], key="o-1")
        await client.patch("/v1/books/1", json={"price": "99.00"})
        assert (await client.get("/v1/orders/1")).json() == created.json()
        assert created.json()["total"] == "20.00"

    async def test_unknown_book_is_a_422_problem_and_stores_nothing(
        self, client: httpx.AsyncClient, gateway: Any
    ) -> None:
        """An order for book 99 (which does not exist) gives 422: nothing charged, no id used."""
        await create_books(client, 1)
        lines = [{"book_id": 1, "quantity": 1}, {"book_id": 99, "quantity": 1}]
        assert_problem(await place_order(client, lines, key="o-1"), 422)
        assert gateway.charges == []
        assert await count_orders(client) == 0

    async def test_invalid_order_is_a_422_problem(self, client: httpx.AsyncClient, gateway: Any) -> None:
        """Invalid lines, a bad Idempotency-Key, or client prices give a 422 naming the field."""
        await create_books(client, 1)
        one = [{"book_id": 1, "quantity": 1}]
        cases: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
            ("no-lines", {"lines": []}, {}, "lines"),
            ("missing-lines", {}, {}, "lines"),
            ("zero-quantity", {"lines": [{"book_id": 1, "quantity": 0}]}, {}, "quantity"),
            ("quantity-101", {"lines": [{"book_id": 1, "quantity": 101}]}, {}, "quantity"),
            ("book-id-text", {"lines": [{"book_id": "one", "quantity": 1}]}, {}, "book_id"),
            ("book-id-huge", {"lines": [{"book_id": 2**31, "quantity": 1}]}, {}, "book_id"),
            ("duplicate-book", {"lines": [*one, {"book_id": 1, "quantity": 2}]}, {}, "lines"),
            ("client-sets-unit-price",
             {"lines": [{"book_id": 1, "quantity": 1, "unit_price": "0.01"}]}, {}, "unit_price"),
            ("client-sets-total", {"lines": one, "total": "0.00"}, {}, "total"),
            ("no-key", {"lines": one}, {"Idempotency-Key": ""}, "idempotency-key"),
            ("key-256-chars", {"lines": one}, {"Idempotency-Key": "k" * 256}, "idempotency-key"),
        ]  # fmt: skip
        for label, body, headers, field in cases:
            with case(label):
                response = await client.post(
                    "/v1/orders", json=body, headers={"Idempotency-Key": "k", **headers}
                )
                assert_validation_problem(response, field)
        without_key = await client.post("/v1/orders", json={"lines": one})
        with case("no Idempotency-Key header"):
            assert_validation_problem(without_key, "idempotency-key")
        assert gateway.charges == []
        assert await count_orders(client) == 0

    async def test_oversized_order_is_refused_by_validation(
        self, client: httpx.AsyncClient, gateway: Any
    ) -> None:
        """Orders of 51 or 10,000 lines are 422s on 'lines' itself; 50 lines are not too many."""
        await create_books(client, 1)
        for count in (10_000, 51):
            with case(f"{count} lines"):
                lines = [{"book_id": n, "quantity": 1} for n in range(1, count + 1)]
                body = assert_validation_problem(await place_order(client, lines, "big"), "lines")
                locs = [[str(p).lower() for p in e["loc"]] for e in body["errors"]]
                assert ["body", "lines"] in locs, f"expected an error on the list itself: {locs}"
        with case("50 lines (books 2-51 do not exist)"):
            lines = [{"book_id": n, "quantity": 1} for n in range(2, 52)]
            body = assert_problem(await place_order(client, lines, "fifty"), 422)
            locs = [[str(p).lower() for p in e["loc"]] for e in body.get("errors", [])]
            assert ["body", "lines"] not in locs, f"50 lines are allowed: {locs}"
        assert gateway.charges == []
        assert await count_orders(client) == 0


# ------------------------------------------------------------------- 6. idempotency


def assert_replay_or_in_flight(responses: list[httpx.Response]) -> httpx.Response:
    """Every response is the one 201 order, or a 409 problem; return a 201."""
    __tracebackhide__ = True
    created = [r for r in responses if r.status_code == 201]
    assert created, f"no request succeeded: {[r.status_code for r in responses]}"
    assert len({r.text for r in created}) == 1, "201 responses with different bodies"
    assert len({r.headers.get("location") for r in created}) == 1, "different Locations"
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 409)
    return created[0]


@pytest.mark.anyio
class TestIdempotency:
    """Task 6: a retried POST with the same Idempotency-Key orders and charges exactly once."""

    async def test_retries_return_the_first_response(self, client: httpx.AsyncClient, gateway: Any) -> None:
        """4 POSTs with one key: same 201, body and Location, one order, one charge; a new key, a new order."""
        await create_books(client, 2, price="4.00")
        lines = [{"book_id": 1, "quantity": 2}, {"book_id": 2, "quantity": 1}]
        responses = [await place_order(client, lines, key="retry-me") for _ in range(4)]
        assert [r.status_code for r in responses] == [201] * 4, responses[-1].text
        assert all(r.json() == responses[0].json() for r in responses)
        assert len({r.headers.get("location") for r in responses}) == 1
        assert gateway.charges == [Decimal("12.00")]
        other = await place_order(client, lines, key="another-key")
        assert other.status_code == 201, other.text
        assert other.json()["id"] == 2, "the same body under another key is another order"
        assert gateway.charges == [Decimal("12.00")] * 2

    async def test_same_content_in_other_key_order_is_a_replay(self, client: httpx.AsyncClient) -> None:
        """The same JSON written with other key order and spacing is the same request."""
        await create_books(client, 1)
        headers = {"Idempotency-Key": "k1", "content-type": "application/json"}
        first = await client.post(
            "/v1/orders", content=b'{"lines": [{"book_id": 1, "quantity": 2}]}', headers=headers
        )
        again = await client.post(
            "/v1/orders", content=b'{ "lines":[ {"quantity":2,"book_id":1} ] }', headers=headers
        )
        assert (first.status_code, again.status_code) == (201, 201), again.text
        assert again.json() == first.json()
        assert await count_orders(client) == 1

    async def test_same_key_other_body_is_a_422_problem(
        self, client: httpx.AsyncClient, gateway: Any
    ) -> None:
        """Reusing a key with a different body gives 422; the first order is unchanged."""
        await create_books(client, 1)
        first = await place_order(client, [{"book_id": 1, "quantity": 1}], key="k1")
        assert_problem(await place_order(client, [{"book_id": 1, "quantity": 9}], key="k1"), 422)
        assert (await client.get("/v1/orders/1")).json() == first.json()
        assert len(gateway.charges) == 1
        assert await count_orders(client) == 1

    async def test_failed_request_is_not_remembered(self, client: httpx.AsyncClient) -> None:
        """A 422 (unknown book) is not stored: the same key succeeds once the book exists."""
        lines = [{"book_id": 1, "quantity": 1}]
        assert_problem(await place_order(client, lines, key="k1"), 422)
        await create_books(client, 1)
        retry = await place_order(client, lines, key="k1")
        assert retry.status_code == 201, retry.text
        assert retry.json()["id"] == 1

    async def test_retry_while_in_flight_is_a_409_problem(self) -> None:
        """A retry while the first request is still charging gets 409 at once; then a replay."""
        gateway = HeldGateway()
        lines = [{"book_id": 1, "quantity": 3}]
        first: list[httpx.Response] = []
        retry: httpx.Response | None = None
        async with make_client(ex.create_app(gateway)) as client:
            await create_books(client, 1, price="2.00")

            async def send_first() -> None:
                first.append(await place_order(client, lines, key="k"))

            async with anyio.create_task_group() as group:
                group.start_soon(send_first)
                try:
                    await wait_until_charging(gateway)
                    with anyio.move_on_after(GUARD_S):
                        retry = await place_order(client, lines, key="k")
                finally:
                    gateway.release.set()
            assert retry is not None, "the retry waited for the first request: expected a 409"
            assert_problem(retry, 409)
            assert first[0].status_code == 201, first[0].text
            later = await place_order(client, lines, key="k")
            assert (later.status_code, later.json()) == (201, first[0].json()), later.text
            assert gateway.charges == [Decimal("6.00")]

    async def test_cancelled_request_releases_its_key(self) -> None:
        """A request cancelled while charging (client gone) leaves its key free for a retry."""
        gateway = HeldGateway()
        lines = [{"book_id": 1, "quantity": 1}]
        async with make_client(ex.create_app(gateway)) as client:
            await create_books(client, 1, price="2.00")
            async with anyio.create_task_group() as group:
                group.start_soon(place_order, client, lines, "k")
                await wait_until_charging(gateway)
                group.cancel_scope.cancel()
            retry = await place_order(client, lines, key="k")
            assert retry.status_code == 201, retry.text
            assert retry.json()["id"] == 1
            assert gateway.charges == [Decimal("2.00")]

    async def test_concurrent_retries_place_one_order(self) -> None:
        """20 simultaneous POSTs with one key: one order, one charge, the rest replays or 409s."""
        gateway = ex.PaymentGateway()
        async with make_client(ex.create_app(gateway)) as client:
            await create_books(client, 1, price="3.00")
            responses: list[httpx.Response] = []

            async def post() -> None:
                lines = [{"book_id": 1, "quantity": 1}]
                responses.append(await place_order(client, lines, key="race"))

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(post)
            assert_replay_or_in_flight(responses)
            assert gateway.charges == [Decimal("3.00")], f"charged {gateway.charges}"
            assert await count_orders(client) == 1

    @pytest.mark.deep
    async def test_jittered_races_conserve_orders_and_charges(self) -> None:
        """Many keys raced at once with random charge times: one order and charge per key."""
        rng = random.Random(7)

        class JitterGateway(ex.PaymentGateway):  # type: ignore[misc]
            async def charge(self, amount: Decimal) -> None:
                await anyio.sleep(rng.choice([0, 0, 0.001, 0.003]))
                await super().charge(amount)

        gateway = JitterGateway(latency=0)
        async with make_client(ex.create_app(gateway)) as client:
            await create_books(client, 5, price="1.00")
            by_key: dict[str, list[httpx.Response]] = {}
            requests = [(f"key-{k}", 1 + k % 5) for k in range(12) for _ in range(6)]
            rng.shuffle(requests)

            async def post(key: str, quantity: int) -> None:
                lines = [{"book_id": 1 + quantity % 5, "quantity": quantity}]
                response = await place_order(client, lines, key=key)
                by_key.setdefault(key, []).append(response)

            async with anyio.create_task_group() as group:
                for key, quantity in requests:
                    group.start_soon(post, key, quantity)
                    if rng.random() < 0.3:
                        await anyio.lowlevel.checkpoint()
            orders = [assert_replay_or_in_flight(responses).json() for responses in by_key.values()]
            assert sorted(o["id"] for o in orders) == list(range(1, 13))
            charged = sorted(gateway.charges)
            assert charged == sorted(Decimal(o["total"]) for o in orders), charged
            assert await count_orders(client) == 12


# ------------------------------------------------------------------- 7. OpenAPI

OPERATIONS: dict[tuple[str, str], set[str]] = {
    ("get", "/v1/books"): {"400", "422"},
    ("post", "/v1/books"): {"400", "409", "422"},
    ("get", "/v1/books/{book_id}"): {"400", "404", "422"},
    ("patch", "/v1/books/{book_id}"): {"400", "404", "422"},
    ("post", "/v1/orders"): {"400", "409", "422"},
    ("get", "/v1/orders/{order_id}"): {"400", "404", "422"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """Built once per test run: the document does not depend on the app's data."""
    document: dict[str, Any] = ex.create_app().openapi()
    return document


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def request_properties(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    properties: dict[str, Any] = resolve(document, body["schema"]).get("properties", {})
    return properties


def parameter_schema(document: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    for parameter in document["paths"][path][method].get("parameters", []):
        if parameter["name"].lower() == name.lower():
            schema: dict[str, Any] = parameter["schema"]
            # An optional parameter is anyOf [its type, null]: look at the non-null part.
            for option in schema.get("anyOf", []):
                if option.get("type") != "null":
                    return {**schema, **option}
            return schema
    pytest.fail(f"{method.upper()} {path} declares no parameter {name!r}")


class TestOpenAPI:
    """Task 7: the OpenAPI document tells the truth about successes, errors and limits."""

    def test_operations_and_their_errors(self) -> None:
        """Exactly the six operations, each declaring its error statuses as problem+json."""
        document = openapi_document()
        found = {
            (method, path)
            for path, item in document["paths"].items()
            for method in item
            if method in HTTP_METHODS
        }
        assert found == set(OPERATIONS)
        for (method, path), statuses in OPERATIONS.items():
            responses = document["paths"][path][method]["responses"]
            missing = statuses - responses.keys()
            assert not missing, f"{method.upper()} {path} does not declare {sorted(missing)}"
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    media = set(response.get("content", {}))
                    assert media == {PROBLEM_JSON}, f"{method.upper()} {path} {status}: {media}"

    def test_problem_schema_replaces_the_default_validation_error(self) -> None:
        """FastAPI's HTTPValidationError ({"detail": [...]}) is replaced by the problem schema."""
        document = openapi_document()
        assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
        responses = document["paths"]["/v1/books"]["post"]["responses"]
        problem = resolve(document, responses["422"]["content"][PROBLEM_JSON]["schema"])
        assert set(problem.get("properties", {})) >= PROBLEM_KEYS

    def test_book_schema_shows_only_public_keys(self) -> None:
        """The 200 schema of GET /v1/books/{book_id} has exactly the public book keys."""
        document = openapi_document()
        ok = document["paths"]["/v1/books/{book_id}"]["get"]["responses"]["200"]
        schema = resolve(document, ok["content"]["application/json"]["schema"])
        assert set(schema.get("properties", {})) == BOOK_KEYS

    def test_idempotency_key_is_a_required_header(self) -> None:
        """POST /v1/orders documents Idempotency-Key as a required header."""
        document = openapi_document()
        parameters = document["paths"]["/v1/orders"]["post"].get("parameters", [])
        headers = {p["name"].lower(): p for p in parameters if p["in"] == "header"}
        assert "idempotency-key" in headers, parameters
        assert headers["idempotency-key"].get("required") is True

    def test_limits_are_in_the_schema(self) -> None:
        """Every size limit of the contract is declared: maxLength, maxItems, maximum."""
        document = openapi_document()
        book = request_properties(document, "post", "/v1/books")
        order = request_properties(document, "post", "/v1/orders")
        line = resolve(document, order["lines"].get("items", {})).get("properties", {})
        checks = [
            ("POST /v1/books title maxLength", book["title"].get("maxLength"), 200),
            ("POST /v1/books author maxLength", book["author"].get("maxLength"), 120),
            ("POST /v1/orders lines maxItems", order["lines"].get("maxItems"), 50),
            ("order line quantity maximum", line["quantity"].get("maximum"), 100),
            ("order line book_id maximum", line["book_id"].get("maximum"), 2_147_483_647),
            (
                "Idempotency-Key maxLength",
                parameter_schema(document, "post", "/v1/orders", "Idempotency-Key").get("maxLength"),
                255,
            ),
            (
                "GET /v1/books limit maximum",
                parameter_schema(document, "get", "/v1/books", "limit").get("maximum"),
                100,
            ),
            (
                "GET /v1/books cursor maxLength",
                parameter_schema(document, "get", "/v1/books", "cursor").get("maxLength"),
                4096,
            ),
        ]
        wrong = [f"{name}: {found!r}, expected {want}" for name, found, want in checks if found != want]
        assert not wrong, "\n".join(wrong)


def seed(app: Any) -> None:
    """Three books and an order, so fuzzed ids sometimes hit existing rows."""

    async def run() -> None:
        async with make_client(app) as http:
            for n in range(1, 4):
                await http.post("/v1/books", json=book_payload(n))
            await place_order(http, [{"book_id": 1, "quantity": 1}], key="seed")

    anyio.run(run)


class TestFuzzing:
    """Task 7: schemathesis finds no 5xx and no response that contradicts the OpenAPI."""

    @pytest.mark.deep
    @pytest.mark.time_limit(60)
    @pytest.mark.parametrize(
        ("method", "path"), list(OPERATIONS), ids=[f"{m.upper()} {p}" for m, p in OPERATIONS]
    )
    def test_operation_survives_fuzzing(self, method: str, path: str) -> None:
        """Valid and invalid generated requests get documented statuses, types and bodies."""
        # Imported here: schemathesis takes a while to import, and only the deep stage needs it.
        import schemathesis
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st
        from schemathesis import GenerationMode
        from schemathesis.specs.openapi.checks import positive_data_acceptance

        app = ex.create_app(ex.PaymentGateway(latency=0))
        seed(app)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        try:
            operation = schema[path][method.upper()]
        except LookupError:
            pytest.fail(f"{method.upper()} {path} is missing from your OpenAPI document")
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        # Schema-valid is not business-valid: a random cursor, a wrong ISBN check digit or
        # an unknown book_id passes the schema and is rightly rejected, so the
        # "positive data must be accepted" check does not apply to this API.
        @given(case=cases)
        @settings(
            max_examples=30, derandomize=True, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def fuzz(case: Any) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        fuzz()
