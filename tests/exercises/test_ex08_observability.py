"""ex08 · Instrument the bookstore API: errors, logs, metrics and health.

The contract is the docstring of ``exercises/ex08_observability.py``. Every test
builds a fresh app on the course database (SQLite, or PostgreSQL when
COURSE_DATABASE_URL is set), talks to it in-process over httpx and reads what an
operator would read: the JSON lines the app wrote to its log stream, its
/metrics exposition and its health answers.

The client is created with ``raise_app_exceptions=False``: httpx's ASGITransport
would otherwise re-raise an exception that escaped the app into the test, even
after a 500 response was sent, and the test could not look at that response.

Database outages are simulated for real, on both databases:

- "down": a connect hook points every new connection at an address where no
  database is (a folder that does not exist for SQLite, a closed port for
  PostgreSQL) and the pool's idle connections are closed, so the driver itself
  fails to connect, as it would against a stopped server;
- "hanging": the test checks out every connection of the app's pool and keeps
  them, so anything that needs one waits (for the pool's 30 s timeout), as it
  would behind a saturated pool or a stuck network. A watchdog thread gives the
  connections back after a few seconds, so a probe without a deadline answers
  late instead of hanging the test.
"""

from __future__ import annotations

import io
import json
import socket
import string
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event

from coursekit import db
from coursekit.impl import load

ex = load("ex08_observability")

pytestmark = [pytest.mark.db, pytest.mark.anyio]

PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
POOL_SIZE = 3
READY_BUDGET_S = 1.5  # the contract says 1 s; the rest is slack for a busy machine
WATCHDOG_S = 3.0  # when a "hanging" database gives its connections back
ID_CHARS = set(string.ascii_letters + string.digits + "._-")
PASSWORD = "correct horse battery staple"


# ------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = db.fresh_engine("ex08", pool_size=POOL_SIZE, max_overflow=0)
    ex.setup_database(engine)
    yield engine
    engine.dispose()


class AppUnderTest:
    """An app, the stream its log goes to, and an in-process client."""

    def __init__(self, engine: Engine) -> None:
        self.stream = io.StringIO()
        self.app = ex.create_app(engine, log_stream=self.stream)
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://test")

    def lines(self) -> list[dict[str, Any]]:
        """Every line written so far, each parsed as a JSON object."""
        __tracebackhide__ = True
        parsed = []
        for raw in self.stream.getvalue().splitlines():
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                pytest.fail(f"a log line is not JSON: {raw[:200]}", pytrace=False)
            if not isinstance(line, dict):
                pytest.fail(f"a log line is JSON but not an object: {raw[:200]}", pytrace=False)
            parsed.append(line)
        return parsed

    def text(self) -> str:
        return self.stream.getvalue()

    def access_lines(self, request_id: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line.get("event") == "request" and line.get("request_id") == request_id
        ]

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """GET /metrics parsed: (sample name, sorted labels) -> value."""
        __tracebackhide__ = True
        response = await self.client.get("/metrics")
        if response.status_code != 200:
            pytest.fail(f"GET /metrics answered {response.status_code}: {response.text[:200]}", pytrace=False)
        if not response.headers.get("content-type", "").startswith("text/plain"):
            pytest.fail(
                f"GET /metrics has Content-Type {response.headers.get('content-type')!r}, "
                "expected Prometheus' text format (text/plain; version=...)",
                pytrace=False,
            )
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


@pytest.fixture
async def api(engine: Engine) -> AsyncIterator[AppUnderTest]:
    under_test = AppUnderTest(engine)
    async with under_test.client:
        yield under_test


def assert_not_logged(api: AppUnderTest, secret: str, label: str) -> None:
    """``secret`` appears in no log line; otherwise name the line's event (not the whole log)."""
    __tracebackhide__ = True
    for raw in api.text().splitlines():
        if secret in raw or json.dumps(secret)[1:-1] in raw:
            try:
                event_name = json.loads(raw).get("event")
            except ValueError:
                event_name = raw[:60]
            pytest.fail(f"{label} is in the log, in the line of event {event_name!r}", pytrace=False)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    __tracebackhide__ = True
    if response.status_code != status:
        pytest.fail(
            f"expected status {status}, got {response.status_code}: {response.text[:300]}", pytrace=False
        )
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith(PROBLEM_JSON):
        pytest.fail(f"Content-Type is {content_type!r}, expected {PROBLEM_JSON}", pytrace=False)
    body = response.json()
    missing = PROBLEM_KEYS - set(body)
    if missing:
        pytest.fail(f"the problem lacks {sorted(missing)}: {body}", pytrace=False)
    if body["status"] != status or body["instance"] != response.request.url.path:
        pytest.fail(f"status/instance do not match the response and the request: {body}", pytrace=False)
    return dict(body)


@contextmanager
def case(label: str) -> Iterator[None]:
    __tracebackhide__ = True
    try:
        yield
    except (AssertionError, pytest.fail.Exception) as exc:
        pytest.fail(f"{label}: {exc}", pytrace=False)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def database_down(engine: Engine) -> Iterator[None]:
    """New connections go where no database is; idle pooled ones are closed."""
    port = closed_port()

    def nowhere(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if engine.dialect.name == "sqlite":
            cargs[0] = str(db.runs.run_dir("ex08-missing") / "no-such-folder" / "gone.sqlite")
        else:
            cparams["host"], cparams["port"] = "127.0.0.1", port

    event.listen(engine, "do_connect", nowhere)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "do_connect", nowhere)
        engine.dispose()


@contextmanager
def database_hangs(engine: Engine) -> Iterator[None]:
    """Every pooled connection is taken; a watchdog gives them back after WATCHDOG_S."""
    held = [engine.connect() for _ in range(POOL_SIZE)]
    lock = threading.Lock()

    def give_back() -> None:
        with lock:
            while held:
                held.pop().close()

    watchdog = threading.Timer(WATCHDOG_S, give_back)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        give_back()


@contextmanager
def count_checkouts(engine: Engine) -> Iterator[list[int]]:
    checkouts = [0]

    def checked_out(*_args: Any) -> None:
        checkouts[0] += 1

    event.listen(engine, "checkout", checked_out)
    try:
        yield checkouts
    finally:
        event.remove(engine, "checkout", checked_out)


async def timed(api: AppUnderTest, path: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await api.client.get(path)
    return response, time.perf_counter() - started


# ------------------------------------------------------------------- 1. problems


class TestProblems:
    """Task 1: every anticipated error is a problem-details response."""

    async def test_domain_errors_are_problems(self, api: AppUnderTest) -> None:
        """BookNotFound, OutOfStock and InvalidCredentials become 404, 409 and 401 problems with their own type."""
        for label, (method, path, payload), status, slug in (
            ("GET /books/99", ("GET", "/books/99", None), 404, "book-not-found"),
            ("order a sold-out book", ("POST", "/orders", {"book_id": 2, "quantity": 1}), 409, "out-of-stock"),
            ("wrong password", ("POST", "/login", {"username": "ada", "password": "nope"}), 401, "invalid-credentials"),
        ):  # fmt: skip
            with case(label):
                body = assert_problem(await api.client.request(method, path, json=payload), status)
                assert body["type"] == f"https://bookstore.example/problems/{slug}", body

    async def test_validation_and_unknown_paths_are_problems(self, api: AppUnderTest) -> None:
        """A bad body is a 422 problem that does not echo what was sent; an unknown path a 404 problem."""
        secret = "hunter2-" + "x" * 300  # too long, and a password: never sent back
        response = await api.client.post("/login", json={"username": "ada", "password": secret})
        body = assert_problem(response, 422)
        assert "hunter2" not in response.text, f"the rejected password is sent back: {body}"
        with case("GET /no/such/path"):
            assert_problem(await api.client.get("/no/such/path"), 404)


# ------------------------------------------------------------------- 2. the unexpected


class TestUnexpectedErrors:
    """Task 2: an unexpected exception is a generic 500 problem, and one logged traceback."""

    async def test_500_is_a_problem_without_internals(self, api: AppUnderTest) -> None:
        """GET /reports/sales gives a 500 problem, with an X-Request-ID, and no exception text or traceback in the body."""
        response = await api.client.get("/reports/sales")
        assert_problem(response, 500)
        for internal in ("10.0.3.7", "AUTH", "RuntimeError", "Traceback", ".py"):
            assert internal not in response.text, f"{internal!r} leaks to the client: {response.text}"
        assert response.headers.get("x-request-id"), "the 500 carries no X-Request-ID for support to quote"

    async def test_traceback_is_logged_once_with_the_request_id(self, api: AppUnderTest) -> None:
        """The log holds the traceback exactly once, on a line with the request's id; the access line says 500."""
        response = await api.client.get("/reports/sales")
        request_id = response.headers.get("x-request-id", "")
        with_traceback = [
            line for line in api.lines() if "Traceback (most recent call last)" in json.dumps(line)
        ]
        assert len(with_traceback) == 1, f"{len(with_traceback)} log lines hold a traceback, expected 1"
        [line] = with_traceback
        assert "RuntimeError" in json.dumps(line), f"the logged traceback does not name the error: {line}"
        assert request_id, "the 500 response has no X-Request-ID"
        assert line.get("request_id") == request_id, (
            f"the traceback line has request_id {line.get('request_id')!r}, the response says {request_id!r}"
        )
        access = api.access_lines(request_id)
        assert [a.get("status") for a in access] == [500], f"access lines for the 500: {access}"


# ------------------------------------------------------------------- 3. request logs


class TestRequestLogs:
    """Task 3: JSON log lines that all carry the request's id, and one access line per request."""

    async def test_access_line_has_the_request_fields(self, api: AppUnderTest) -> None:
        """One JSON access line per request: request_id (as in X-Request-ID), method, route template, status, duration_ms."""
        started = time.perf_counter()
        response = await api.client.get("/books/3")
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        request_id = response.headers.get("x-request-id", "")
        assert request_id, "the response has no X-Request-ID header"
        access = api.access_lines(request_id)
        assert len(access) == 1, f"expected one line with event 'request' and this request_id, found {access}"
        [line] = access
        assert (line.get("method"), line.get("route"), line.get("status")) == (
            "GET",
            "/books/{book_id}",
            200,
        ), line
        duration = line.get("duration_ms")
        assert isinstance(duration, int | float), f"duration_ms is not a number: {duration!r}"
        assert not isinstance(duration, bool), f"duration_ms is not a number: {duration!r}"
        assert 0 <= duration <= elapsed_ms + 1, (
            f"duration_ms {duration} but the request took {elapsed_ms:.1f} ms"
        )

    async def test_every_line_of_a_request_carries_its_id(self, api: AppUnderTest) -> None:
        """The route's own log line ('book viewed') has the same request_id as the access line."""
        response = await api.client.get("/books/1")
        request_id = response.headers.get("x-request-id", "")
        viewed = [line for line in api.lines() if line.get("event") == "book viewed"]
        assert viewed, "the route's own 'book viewed' line is missing from the log"
        assert [line.get("request_id") for line in viewed] == [request_id], viewed

    async def test_a_valid_client_request_id_is_kept(self, api: AppUnderTest) -> None:
        """A valid X-Request-ID from the client is echoed in the response and used in the log."""
        offered = "order-7f3a.retry_2"
        response = await api.client.get("/books/1", headers={"X-Request-ID": offered})
        assert response.headers.get("x-request-id") == offered
        assert len(api.access_lines(offered)) == 1, "no access line carries the client's request id"

    async def test_invalid_request_ids_are_replaced(self, api: AppUnderTest) -> None:
        """An X-Request-ID that is too long or has other characters is replaced by a new id, in the header and the log."""
        offered = [
            "a" * 65,
            "abc def",
            'x", "level": "critical',
            "café-42",
            "<script>alert(1)</script>",
            "id;rm -rf",
        ]
        seen = set()
        for value in offered:
            with case(f"X-Request-ID {value[:30]!r}"):
                response = await api.client.get("/books/1", headers={"X-Request-ID": value.encode()})
                given = response.headers.get("x-request-id", "")
                assert given, "the response has no X-Request-ID"
                if given == value:
                    pytest.fail(
                        f"the invalid id came back unchanged ({len(value)} characters)", pytrace=False
                    )
                assert len(given) <= 64, f"the new id {given!r} is longer than 64 characters"
                assert set(given) <= ID_CHARS, (
                    f"the new id {given!r} has characters outside A-Z a-z 0-9 . _ -"
                )
                assert len(api.access_lines(given)) == 1, "the new id is not the one in the log"
                seen.add(given)
        assert len(seen) == len(offered), "the same id was given to different requests"
        for value in offered:
            assert_not_logged(api, value, f"the rejected id {value[:30]!r}")

    async def test_routes_are_templates_and_unmatched_paths_say_so(self, api: AppUnderTest) -> None:
        """The route field is the template (/books/{book_id}), and 'unmatched' for a path no route serves."""
        ids = []
        for path in ("/books/1", "/books/3", "/books/xyz", "/nowhere/42"):
            ids.append((await api.client.get(path)).headers.get("x-request-id", ""))
        routes = [[line.get("route") for line in api.access_lines(i)] for i in ids]
        assert routes == [["/books/{book_id}"]] * 3 + [["unmatched"]], routes

    async def test_concurrent_requests_keep_their_own_ids(self, api: AppUnderTest) -> None:
        """Twenty requests at once: every line of each carries that request's own id."""

        async def one(n: int) -> str:
            response = await api.client.get(
                f"/books/{1 + n % 3}", headers={"X-Request-ID": f"concurrent-{n}"}
            )
            return response.headers.get("x-request-id", "")

        results: list[str] = [""] * 20

        async def run(n: int) -> None:
            results[n] = await one(n)

        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(run, n)
        assert results == [f"concurrent-{n}" for n in range(20)], results
        viewed = Counter(line.get("request_id") for line in api.lines() if line.get("event") == "book viewed")
        access = Counter(line.get("request_id") for line in api.lines() if line.get("event") == "request")
        expected = Counter(f"concurrent-{n}" for n in range(20))
        assert viewed == expected, f"'book viewed' lines per request_id: {dict(viewed)}"
        assert access == expected, f"access lines per request_id: {dict(access)}"


# ------------------------------------------------------------------- 4. redaction


class TestRedaction:
    """Task 4: no password, token or credential reaches the log, wherever it hides."""

    async def test_login_secrets_never_reach_the_log(self, api: AppUnderTest) -> None:
        """Passwords, the Authorization header, cookies and issued tokens are redacted; the username stays."""
        bearer, cookie = "eyJhbGciOi.bearer-S3cr3t", "sid-C00kieValue"
        headers = {"Authorization": f"Bearer {bearer}", "Cookie": f"session={cookie}"}
        wrong = await api.client.post(
            "/login", json={"username": "ada", "password": "Tr0ub4dor&3"}, headers=headers
        )
        assert wrong.status_code == 401, wrong.text
        right = await api.client.post(
            "/login", json={"username": "ada", "password": PASSWORD}, headers=headers
        )
        assert right.status_code == 200, right.text
        token = right.json()["access_token"]
        for label, secret in (
            ("a wrong password", "Tr0ub4dor&3"), ("the password", PASSWORD), ("the bearer token", bearer),
            ("the session cookie", cookie), ("the issued access token", token),
        ):  # fmt: skip
            assert_not_logged(api, secret, label)
        attempts = [line for line in api.lines() if line.get("event") == "login attempt"]
        assert len(attempts) == 2, (
            "the route's 'login attempt' lines are missing (redact them, do not drop them)"
        )
        assert all(line.get("payload", {}).get("username") == "ada" for line in attempts), attempts[0]

    async def test_secrets_in_urls_and_credentials_are_redacted(self, api: AppUnderTest) -> None:
        """Secret query or fragment parameters, URL passwords and credential values are redacted; the rest of the URL stays."""
        urls = {
            "https://hooks.example/cb?order=7&token=Qz9-query-S3cret": "Qz9-query-S3cret",
            "https://hooks.example/cb?order=7#access_token=Fr4g-S3cret&state=x": "Fr4g-S3cret",
            "https://svc:Us3rinfo-S3cret@hooks.example/cb?order=7": "Us3rinfo-S3cret",
        }
        for url, secret in urls.items():
            with case(url):
                response = await api.client.post(
                    "/subscriptions",
                    json={"callback_url": url},
                    headers={"Authorization": "Basic YWRhOkJhc2ljLVMzY3JldA=="},
                )
                assert response.status_code == 201, response.text
                assert_not_logged(api, secret, "the secret")
        assert_not_logged(
            api, "YWRhOkJhc2ljLVMzY3JldA==", "the Basic credentials of the Authorization header"
        )
        created = [line for line in api.lines() if line.get("event") == "subscription created"]
        assert len(created) == 3, "the route's 'subscription created' lines are missing"
        for line in created:
            assert "hooks.example/cb" in str(line.get("callback_url")), f"the URL itself was lost: {line}"
            assert "order=7" in str(line.get("callback_url")), f"a harmless query parameter was lost: {line}"


# ------------------------------------------------------------------- 5. metrics


REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"


def series(samples: dict[Any, float], name: str) -> dict[tuple[str, str, str], float]:
    """{(method, route, status): value} of one sample name."""
    found = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            as_dict = dict(labels)
            found[(as_dict.get("method", ""), as_dict.get("route", ""), as_dict.get("status", ""))] = value
    return found


class TestMetrics:
    """Task 5: RED metrics on /metrics that count exactly the requests served."""

    async def test_counts_match_the_requests_sent(self, api: AppUnderTest) -> None:
        """After a known mix of requests, http_requests_total has exactly one series per method (or "other"), route template and status."""
        for path in ("/books/1", "/books/1", "/books/3", "/books/3", "/books/1", "/books/99"):
            await api.client.get(path)
        for n in range(3):
            await api.client.get(f"/no/such/page-{n}")
        await api.client.post("/orders", json={"book_id": 2, "quantity": 1})
        await api.client.get("/reports/sales")
        for invented in ("BREW", "PROPFIND"):
            await api.client.request(invented, "/books/1")
        counts = series(await api.metrics(), REQUESTS)
        assert counts == {
            ("GET", "/books/{book_id}", "200"): 5.0,
            ("GET", "/books/{book_id}", "404"): 1.0,
            ("GET", "unmatched", "404"): 3.0,
            ("POST", "/orders", "409"): 1.0,
            ("GET", "/reports/sales", "500"): 1.0,
            ("other", "/books/{book_id}", "405"): 2.0,
        }, counts

    async def test_durations_are_a_histogram_in_seconds(self, api: AppUnderTest) -> None:
        """http_request_duration_seconds counts every request, and its sum (in seconds) fits in the time they took."""
        started = time.perf_counter()
        for _ in range(4):
            await api.client.get("/books/1")
        elapsed = time.perf_counter() - started
        samples = await api.metrics()
        key = ("GET", "/books/{book_id}", "200")
        count, total = (
            series(samples, DURATION + "_count").get(key),
            series(samples, DURATION + "_sum").get(key),
        )
        assert count == 4.0, f"{DURATION}_count{key} is {count}, expected 4"
        assert total is not None, f"no {DURATION}_sum{key}"
        assert 0 < total <= elapsed, (
            f"{DURATION}_sum is {total}, but the 4 requests took {elapsed:.4f} s in all: "
            "Prometheus measures durations in seconds"
        )
        buckets = series(samples, DURATION + "_bucket")
        assert buckets, f"{DURATION} has no _bucket samples: it must be a histogram"

    async def test_each_app_has_its_own_metrics(self, engine: Engine) -> None:
        """Two apps in one process each count only their own requests."""
        first, second = AppUnderTest(engine), AppUnderTest(engine)
        async with first.client, second.client:
            for _ in range(2):
                await first.client.get("/books/1")
            await second.client.get("/books/3")
            first_counts = series(await first.metrics(), REQUESTS)
            second_counts = series(await second.metrics(), REQUESTS)
        assert first_counts == {("GET", "/books/{book_id}", "200"): 2.0}, first_counts
        assert second_counts == {("GET", "/books/{book_id}", "200"): 1.0}, second_counts


# ------------------------------------------------------------------- 6. health


class TestHealth:
    """Task 6: liveness never needs the database; readiness follows it, on time."""

    async def test_liveness_never_touches_the_database(self, api: AppUnderTest, engine: Engine) -> None:
        """GET /health/live answers 200 without using a database connection, even with the database down."""
        with count_checkouts(engine) as checkouts, database_down(engine):
            for _ in range(3):
                response = await api.client.get("/health/live")
                assert response.status_code == 200, response.text
        assert checkouts[0] == 0, f"liveness checked out {checkouts[0]} database connection(s)"

    async def test_readiness_follows_the_database(self, api: AppUnderTest, engine: Engine) -> None:
        """GET /health/ready: 200 when the database answers, a 503 problem (no driver text) while it is down, 200 when back."""
        before, _ = await timed(api, "/health/ready")
        assert before.status_code == 200, f"database up: {before.status_code} {before.text[:200]}"
        with database_down(engine):
            down, seconds = await timed(api, "/health/ready")
            body = assert_problem(down, 503)
        assert seconds < READY_BUDGET_S, f"the 503 took {seconds:.2f} s"
        for internal in ("OperationalError", "unable to open", "refused", "sqlite", "psycopg", "127.0.0.1"):
            assert internal.lower() not in json.dumps(body).lower(), f"{internal!r} leaks in {body}"
        after, _ = await timed(api, "/health/ready")
        assert after.status_code == 200, f"database back: {after.status_code} {after.text[:200]}"

    @pytest.mark.deep
    async def test_readiness_answers_on_time_when_the_database_hangs(
        self, api: AppUnderTest, engine: Engine
    ) -> None:
        """With every database connection busy, GET /health/ready still answers within 1 s: a 503 problem."""
        with database_hangs(engine):
            response, seconds = await timed(api, "/health/ready")
        assert seconds < READY_BUDGET_S, (
            f"readiness took {seconds:.1f} s while the database hung (it answered only when the "
            f"connections were given back after {WATCHDOG_S:.0f} s)"
        )
        assert_problem(response, 503)
        recovered, _ = await timed(api, "/health/ready")
        assert recovered.status_code == 200, f"after the hang: {recovered.status_code} {recovered.text[:200]}"
