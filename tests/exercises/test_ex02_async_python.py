"""Tests for ex02: a concurrent fetcher over an in-process API.

The tests own a small FastAPI app with fast, slow, failing, non-JSON, broken
and hanging endpoints, plus endpoints that wait at a gate the test opens. The
app is wrapped in a meter that records how many requests are inside it at once
(the peak is what "bounded concurrency" means to the server), and the client's
transport records every request sent and refuses connections to paths under
/down. A few tests use real sockets instead: a TCP server on 127.0.0.1 that
accepts connections and never answers, and a port where nobody listens.
Every call of the code under test runs under a guard, so a wrong solution fails
with a message instead of hanging the test run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import random
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coursekit.impl import load

ex = load("ex02_async_python")

pytestmark = pytest.mark.anyio

HANG_S = 30.0  # how long /hang would take: far beyond any sane timeout below
GUARD_S = 3.0  # a test fails (instead of hanging) if the code under test takes this long
T = TypeVar("T")


# --------------------------------------------------------------------------- test app


class Meter:
    """ASGI wrapper: counts requests inside the app, now and at the peak."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.in_flight = 0
        self.peak = 0
        self.started = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.started += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class RecordingTransport(httpx.AsyncBaseTransport):
    """Records every request sent; paths under /down never reach the app (connection refused)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        self.sent.append(target)
        if request.url.path.startswith("/down"):
            await asyncio.sleep(0)
            raise httpx.ConnectError("connection refused (simulated)", request=request)
        return await self.inner.handle_async_request(request)


def make_app() -> FastAPI:
    """The test app (built once: each test sets ``app.state.gate`` to its own event)."""
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int, delay: float = 0.0) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"id": item_id}

    @app.get("/status/{code}")
    async def status(code: int, delay: float = 0.0) -> Response:
        await asyncio.sleep(delay)
        return JSONResponse({"detail": f"status {code}"}, status_code=code)

    @app.get("/empty")
    async def empty() -> Response:
        return Response(status_code=204)

    @app.get("/text")
    async def text() -> Response:
        return PlainTextResponse("this is not JSON")

    @app.get("/gzip-garbage")
    async def gzip_garbage() -> Response:
        # Claims a gzip body but sends plain bytes: httpx cannot decode it.
        return Response(
            b'{"id": 1}', media_type="application/json", headers={"Content-Encoding": "gzip"}
        )

    @app.get("/loop")
    async def loop() -> Response:
        return RedirectResponse("/loop")

    @app.get("/hang")
    async def hang(n: int = 0) -> dict[str, Any]:
        await asyncio.sleep(HANG_S)
        return {"hung": n}

    @app.get("/gate/{item_id}")
    async def gated(item_id: int, request: Request) -> dict[str, Any]:
        await request.app.state.gate.wait()
        return {"id": item_id}

    return app


@pytest.fixture(scope="module", autouse=True)
def short_gc_pauses() -> Iterator[None]:
    """Keep the garbage collector from stalling the event loop while these tests run.

    A full collection walks every object the imports created (pytest, FastAPI,
    pydantic, ...) and can take 0.1-0.5 s on a busy machine: long enough to fake a
    timeout in a test that measures one. Freezing hides those objects from the
    collector until this module is done.
    """
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return make_app()


@pytest.fixture
def gate(app: FastAPI) -> asyncio.Event:
    """Requests to /gate/... wait until the test sets this event."""
    event = asyncio.Event()
    app.state.gate = event
    return event


@pytest.fixture
def meter(app: FastAPI, gate: asyncio.Event) -> Meter:
    return Meter(app)


@pytest.fixture
def transport(meter: Meter) -> RecordingTransport:
    return RecordingTransport(httpx.ASGITransport(app=meter))


@pytest.fixture
async def client(transport: RecordingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


# --------------------------------------------------------------------------- real sockets


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.open_connections = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.writers.add(writer)
        try:
            while await reader.read(4096):  # read the request and ignore it, until EOF
                pass
        except ConnectionError:
            pass
        finally:
            self.open_connections -= 1
            self.writers.discard(writer)
            writer.close()

    def owns(self, task: asyncio.Task[Any]) -> bool:
        """Is ``task`` one of this server's connection handlers?"""
        return getattr(task.get_coro(), "__qualname__", "") == "SilentServer.handle"

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    silent = SilentServer()
    silent.server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    try:
        yield silent
    finally:
        silent.server.close()
        for writer in list(silent.writers):
            writer.close()
        await silent.server.wait_closed()
        await until(lambda: silent.open_connections == 0)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 where nobody listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Never used (the test servers speak plain HTTP), and strict: it trusts no certificate.

    Without it every new client would load the CA bundle, ~0.1 s each.
    """
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def real_client(port: int, *, timeout: float) -> httpx.AsyncClient:
    """A real network client (no proxies from the environment), with httpx's own timeout."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        timeout=httpx.Timeout(timeout),
        trust_env=False,
        verify=tls_context(),
    )


# --------------------------------------------------------------------------- helpers


async def guarded(call: Awaitable[T]) -> tuple[T, float]:
    """Await ``call`` under the guard; return its result and the wall time it took."""
    started = time.perf_counter()
    try:
        with anyio.fail_after(GUARD_S):
            result = await call
    except TimeoutError:
        pytest.fail(f"the call did not return within {GUARD_S:.0f} s (does it hang?)")
    return result, time.perf_counter() - started


async def until(condition: Callable[[], bool], within: float = 1.0) -> bool:
    """Poll ``condition`` on the event loop for up to ``within`` seconds."""
    end = time.perf_counter() + within
    while not condition():
        if time.perf_counter() > end:
            return False
        await asyncio.sleep(0.001)
    return True


async def fetch_all(
    client: httpx.AsyncClient,
    paths: list[str],
    *,
    max_concurrency: int = 4,
    per_call_timeout: float = 5.0,
    deadline: float = 10.0,
) -> list[Any]:
    """The code under test, with roomy defaults for the arguments a test does not care about."""
    results: list[Any] = await ex.fetch_all(
        client,
        paths,
        max_concurrency=max_concurrency,
        per_call_timeout=per_call_timeout,
        deadline=deadline,
    )
    return results


def kinds(results: list[Any]) -> list[str | None]:
    return [r.error for r in results]


def other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def settle() -> None:
    """Give the loop a few turns: a task cancelled but not awaited is still pending."""
    for _ in range(3):
        await asyncio.sleep(0)


async def assert_cancellation_propagates(
    task: asyncio.Task[Any], name: str, started: Callable[[], bool]
) -> None:
    """Wait until ``task`` has its calls in flight, cancel it, and require that it ends cancelled."""
    await until(lambda: started() or task.done())
    if task.done():
        task.result()  # surfaces the stub's NotImplementedError, or returns early
        pytest.fail(f"{name} returned before its hanging calls could finish")
    task.cancel()
    with anyio.fail_after(GUARD_S):
        await asyncio.wait({task})
    if not task.cancelled():
        error = task.exception()
        outcome = f"raised {error!r}" if error is not None else f"returned {task.result()!r}"
        pytest.fail(
            f"{name} swallowed the cancellation and {outcome}: a cancelled task must end "
            "cancelled, or a caller's timeout can no longer stop it"
        )


# --------------------------------------------------------------------------- task 1


class TestFetchOneClassifies:
    """Task 1: fetch_one turns every kind of answer into a result, never an exception."""

    async def test_success_returns_status_and_json(self, client: httpx.AsyncClient) -> None:
        """A 200 gives ok=True, status 200, the decoded JSON as value and no error."""
        result, _ = await guarded(ex.fetch_one(client, "/items/7", per_call_timeout=5.0))
        assert result == ex.FetchResult(path="/items/7", status=200, value={"id": 7})
        assert result.ok

    @pytest.mark.parametrize("code", [500, 404, 302])
    async def test_other_status_is_http_error(self, client: httpx.AsyncClient, code: int) -> None:
        """A response that is not 2xx (a 3xx redirect included) is 'http_error' with its status."""
        result, _ = await guarded(ex.fetch_one(client, f"/status/{code}", per_call_timeout=5.0))
        assert (result.path, result.status, result.error) == (f"/status/{code}", code, "http_error")
        assert not result.ok
        assert result.value is None, "a failed call has no value, even when its body is JSON"
        assert result.message, "a failure needs a message saying what happened"

    @pytest.mark.parametrize("path", ["/text", "/empty"], ids=["plain-text", "204-no-content"])
    async def test_2xx_without_json_is_http_error(self, client: httpx.AsyncClient, path: str) -> None:
        """A 2xx whose body is not JSON (plain text, or no body at all) is 'http_error' with its status."""
        result, _ = await guarded(ex.fetch_one(client, path, per_call_timeout=5.0))
        assert result.error == "http_error", f"got {result!r}"
        assert (result.status, result.value) == (200 if path == "/text" else 204, None)
        assert result.message

    async def test_undecodable_body_is_http_error(self, client: httpx.AsyncClient) -> None:
        """A body labelled gzip that is not gzip is 'http_error' (status None), not an exception."""
        try:
            result, _ = await guarded(ex.fetch_one(client, "/gzip-garbage", per_call_timeout=5.0))
        except httpx.HTTPError as exc:
            pytest.fail(f"fetch_one raised {type(exc).__name__}: every failed call must be a result")
        assert (result.status, result.error, result.value) == (None, "http_error", None)
        assert result.message

    async def test_redirect_loop_is_http_error(self, transport: RecordingTransport) -> None:
        """With redirects followed, a redirect loop is 'http_error' (status None), not an exception."""
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", follow_redirects=True, max_redirects=3
        ) as follower:
            try:
                result, _ = await guarded(ex.fetch_one(follower, "/loop", per_call_timeout=5.0))
            except httpx.HTTPError as exc:
                pytest.fail(f"fetch_one raised {type(exc).__name__}: every failed call must be a result")
        assert (result.path, result.status, result.error) == ("/loop", None, "http_error")
        assert result.message

    async def test_connection_error_is_transport_error(self, client: httpx.AsyncClient) -> None:
        """A refused connection is reported as 'transport_error' with status None."""
        result, _ = await guarded(ex.fetch_one(client, "/down/1", per_call_timeout=5.0))
        assert (result.path, result.status, result.error) == ("/down/1", None, "transport_error")
        assert result.message

    async def test_real_refused_connection_is_transport_error(self, closed_port: int) -> None:
        """Over a real socket, a port where nobody listens gives 'transport_error' with status None."""
        async with real_client(closed_port, timeout=5.0) as real:
            result, _ = await guarded(ex.fetch_one(real, "/items/1", per_call_timeout=5.0))
        assert (result.status, result.error, result.value) == (None, "transport_error", None)
        assert result.message


# --------------------------------------------------------------------------- task 2


class TestFetchOneTimeout:
    """Task 2: fetch_one gives up after per_call_timeout, and lets cancellation through."""

    async def test_hanging_call_times_out(self, client: httpx.AsyncClient, meter: Meter) -> None:
        """An in-process call that hangs is 'timeout' soon after per_call_timeout, and is stopped."""
        result, elapsed = await guarded(ex.fetch_one(client, "/hang", per_call_timeout=0.05))
        assert (result.status, result.error) == (None, "timeout"), (
            "httpx's own timeouts are not enforced by the in-process ASGITransport"
        )
        assert result.message
        assert elapsed < 1.0, f"took {elapsed:.2f} s for a 0.05 s timeout"
        assert meter.in_flight == 0, "the timed-out request is still running inside the app"

    @pytest.mark.parametrize(
        ("client_timeout", "per_call_timeout"),
        [(5.0, 0.05), (0.05, 5.0)],
        ids=["per-call-timeout-first", "client-timeout-first"],
    )
    async def test_silent_real_server_times_out(
        self, silent_server: SilentServer, client_timeout: float, per_call_timeout: float
    ) -> None:
        """A real server that accepts but never answers gives 'timeout', whichever timeout fires first."""
        async with real_client(silent_server.port, timeout=client_timeout) as real:
            result, elapsed = await guarded(
                ex.fetch_one(real, "/items/1", per_call_timeout=per_call_timeout)
            )
        assert (result.status, result.error) == (None, "timeout"), (
            f"a silent server was reported as {result.error!r} ({result.message}); "
            "a network timeout is a timeout, even though httpx files it under its transport errors"
        )
        assert result.message
        assert elapsed < 1.0, f"took {elapsed:.2f} s for a 0.05 s timeout"

    async def test_cancellation_propagates(self, client: httpx.AsyncClient, meter: Meter) -> None:
        """Cancelling fetch_one cancels it: CancelledError propagates, it is not made a result."""
        task = asyncio.create_task(ex.fetch_one(client, "/hang", per_call_timeout=10.0))
        await assert_cancellation_propagates(task, "fetch_one", lambda: meter.in_flight == 1)
        await settle()
        assert meter.in_flight == 0, "the cancelled request is still running inside the app"


# --------------------------------------------------------------------------- task 3


async def in_flight_at_the_gate(
    client: httpx.AsyncClient, meter: Meter, gate: asyncio.Event, paths: list[str], limit: int
) -> tuple[int, list[Any]]:
    """Run fetch_all on gated paths; return how many were in flight while the gate was shut."""
    task = asyncio.create_task(fetch_all(client, paths, max_concurrency=limit))
    try:
        await until(lambda: meter.in_flight >= min(limit, len(paths)) or task.done())
        await asyncio.sleep(0.02)  # room for more requests to get in, if the bound leaks
        held = meter.in_flight
    finally:
        gate.set()
    results, _ = await guarded(task)
    return held, results


class TestBoundedConcurrency:
    """Task 3: fetch_all runs the calls concurrently, never more than max_concurrency at once."""

    @pytest.mark.parametrize("limit", [1, 3])
    async def test_in_flight_reaches_and_holds_the_limit(
        self,
        client: httpx.AsyncClient,
        meter: Meter,
        gate: asyncio.Event,
        transport: RecordingTransport,
        limit: int,
    ) -> None:
        """With 4x more slow paths than the limit, exactly max_concurrency requests are in flight."""
        paths = [f"/gate/{i}" for i in range(4 * limit)]
        held, results = await in_flight_at_the_gate(client, meter, gate, paths, limit)
        assert held <= limit, f"{held} requests were in flight at once, limit {limit}"
        assert held == limit, (
            f"only {held} request(s) in flight with a limit of {limit}: the calls do not overlap"
        )
        assert meter.peak == limit, f"peak in flight was {meter.peak}, limit {limit}"
        assert kinds(results) == [None] * len(paths)
        assert sorted(transport.sent) == sorted(paths), "every path must be requested exactly once"

    async def test_fewer_paths_than_limit_all_run_at_once(
        self, client: httpx.AsyncClient, meter: Meter, gate: asyncio.Event
    ) -> None:
        """With 4 slow paths and a limit of 10, all 4 requests are in flight together."""
        paths = [f"/gate/{i}" for i in range(4)]
        held, results = await in_flight_at_the_gate(client, meter, gate, paths, 10)
        assert held == 4, f"{held} request(s) in flight, expected all 4 at once"
        assert kinds(results) == [None] * 4

    @pytest.mark.deep
    @pytest.mark.parametrize("limit", [1, 3, 5])
    async def test_peak_in_flight_equals_limit_with_real_delays(
        self, client: httpx.AsyncClient, meter: Meter, limit: int
    ) -> None:
        """With more paths than the limit, the app sees exactly max_concurrency requests at peak."""
        paths = [f"/items/{i}?delay=0.05" for i in range(4 * limit)]
        results, _ = await guarded(fetch_all(client, paths, max_concurrency=limit))
        assert all(r.ok for r in results), kinds(results)
        assert meter.started == len(paths), "every path must be requested exactly once"
        assert meter.peak == limit, f"peak in flight was {meter.peak} with limit {limit}"

    @pytest.mark.deep
    async def test_concurrency_cuts_wall_time(self, client: httpx.AsyncClient) -> None:
        """8 calls of 0.15 s with limit 4 take well under the 1.2 s a sequential loop needs."""
        paths = [f"/items/{i}?delay=0.15" for i in range(8)]
        _, elapsed = await guarded(fetch_all(client, paths, max_concurrency=4))
        sequential = 8 * 0.15
        assert elapsed < sequential / 1.5, f"{elapsed:.2f} s vs {sequential:.2f} s sequential"

    @pytest.mark.deep
    async def test_failures_release_their_slot(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """Failed and timed-out calls free their slot: later paths run, the bound still holds."""
        paths = ["/hang", "/status/500", "/down/1", "/hang", "/text", "/gzip-garbage"] + [
            f"/items/{i}" for i in range(6)
        ]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=2, per_call_timeout=0.3, deadline=10.0)
        )
        assert kinds(results) == [
            "timeout", "http_error", "transport_error", "timeout", "http_error", "http_error",
        ] + [None] * 6  # fmt: skip
        assert meter.peak == 2, f"peak in flight was {meter.peak}, limit 2"


# --------------------------------------------------------------------------- task 4


class TestResults:
    """Task 4: one result per path, in input order, failures kept next to successes."""

    async def test_results_in_input_order(self, client: httpx.AsyncClient) -> None:
        """Results follow the order of `paths`, not the order in which the calls finished."""
        delays = [0.04, 0.01, 0.03, 0.0, 0.02]
        paths = [f"/items/{i}?delay={d}" for i, d in enumerate(delays)]
        results, _ = await guarded(fetch_all(client, paths, max_concurrency=5))
        assert [r.path for r in results] == paths
        assert [r.value for r in results] == [{"id": i} for i in range(len(paths))]

    async def test_duplicates_each_get_a_result(
        self, client: httpx.AsyncClient, transport: RecordingTransport
    ) -> None:
        """A path listed twice is fetched twice and gets two results, one at each position."""
        paths = ["/items/1", "/items/2", "/items/1"]
        results, _ = await guarded(fetch_all(client, paths))
        assert [r.path for r in results] == paths
        assert [r.value for r in results] == [{"id": 1}, {"id": 2}, {"id": 1}]
        assert sorted(transport.sent) == sorted(paths)

    async def test_partial_results_keep_successes(
        self, client: httpx.AsyncClient, transport: RecordingTransport
    ) -> None:
        """Each failure is reported in its own result, each path is fetched once, successes are kept."""
        paths = [
            "/items/1", "/status/500", "/items/2", "/down/x", "/gzip-garbage", "/status/404",
            "/text", "/status/302", "/items/3?delay=0.01",
        ]  # fmt: skip
        try:
            results, _ = await guarded(fetch_all(client, paths, max_concurrency=3))
        except Exception as exc:  # an ExceptionGroup from a TaskGroup, say
            pytest.fail(f"fetch_all raised {exc!r} instead of returning every result")
        assert [r.path for r in results] == paths
        assert kinds(results) == [
            None, "http_error", None, "transport_error", "http_error", "http_error",
            "http_error", "http_error", None,
        ]  # fmt: skip
        assert [r.status for r in results] == [200, 500, 200, None, None, 404, 200, 302, 200]
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}, {"id": 3}]
        assert all(r.message for r in results if not r.ok), "every failure needs a message"
        assert Counter(transport.sent) == Counter(paths), (
            "every path must be requested exactly once (no retries: the caller decides)"
        )

    async def test_results_are_frozen_fetch_results(self, client: httpx.AsyncClient) -> None:
        """fetch_all returns a list of FetchResult, which are immutable."""
        results, _ = await guarded(fetch_all(client, ["/items/1"]))
        assert isinstance(results, list)
        assert all(isinstance(r, ex.FetchResult) for r in results)
        with pytest.raises(dataclasses.FrozenInstanceError):
            results[0].status = 500

    async def test_empty_input_gives_empty_list(
        self, client: httpx.AsyncClient, transport: RecordingTransport
    ) -> None:
        """No paths: an empty list back and no request made."""
        results, _ = await guarded(fetch_all(client, []))
        assert results == []
        assert transport.sent == []

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    async def test_random_batches(
        self, client: httpx.AsyncClient, meter: Meter, transport: RecordingTransport
    ) -> None:
        """Random mixes of good and bad paths, at random limits: every result is the expected one."""
        rng = random.Random(2024)
        for _ in range(15):
            expected: list[tuple[str, str | None, int | None]] = []
            for i in range(rng.randint(0, 14)):
                delay = rng.choice([0.0, 0.0, 0.005, 0.01])
                code = rng.choice([302, 400, 404, 500, 503])
                expected.append(rng.choice([
                    (f"/items/{i}?delay={delay}", None, 200),
                    (f"/items/{i}", None, 200),
                    (f"/status/{code}?delay={delay}", "http_error", code),
                    ("/empty", "http_error", 204),
                    ("/text", "http_error", 200),
                    ("/gzip-garbage", "http_error", None),
                    (f"/down/{i}", "transport_error", None),
                ]))  # fmt: skip
            if expected and rng.random() < 0.5:  # at most one hang: each costs a full timeout
                expected.insert(rng.randrange(len(expected)), ("/hang", "timeout", None))
            paths = [path for path, _, _ in expected]
            limit = rng.randint(1, 5)
            meter.peak = 0
            transport.sent.clear()
            results, _ = await guarded(
                fetch_all(client, paths, max_concurrency=limit, per_call_timeout=0.25, deadline=10.0)
            )
            assert [(r.path, r.error, r.status) for r in results] == expected, f"limit {limit}"
            assert all((r.value is not None) == r.ok for r in results)
            assert Counter(transport.sent) == Counter(paths)
            assert meter.peak <= limit
            assert meter.in_flight == 0


# --------------------------------------------------------------------------- task 5


class TestPerCallTimeout:
    """Task 5: in fetch_all, each call has its own timeout, counted from when it starts."""

    async def test_waiting_for_a_slot_does_not_count(self, client: httpx.AsyncClient) -> None:
        """6 calls of 0.04 s, one at a time, all succeed with a 0.2 s per-call timeout (0.24 s in all)."""
        paths = [f"/items/{i}?delay=0.04" for i in range(6)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=1, per_call_timeout=0.2, deadline=10.0)
        )
        assert kinds(results) == [None] * 6, (
            "a call timed out although each one needs a fifth of its timeout: the time "
            "spent waiting for a free slot was counted against it"
        )

    @pytest.mark.deep
    async def test_hanging_path_times_out_alone(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """A hanging endpoint yields 'timeout' for that path only, soon after per_call_timeout."""
        paths = ["/items/1", "/hang", "/items/2", "/items/3"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=4, per_call_timeout=0.2, deadline=10.0)
        )
        assert kinds(results) == [None, "timeout", None, None], "expected only /hang to time out"
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}, {"id": 3}]
        assert elapsed < 1.5, f"took {elapsed:.2f} s with a 0.2 s per-call timeout"
        assert meter.in_flight == 0, "the timed-out request is still running inside the app"

    @pytest.mark.deep
    async def test_timeout_is_per_call_not_per_batch(self, client: httpx.AsyncClient) -> None:
        """6 calls of 0.2 s, one at a time, all succeed with a 1 s per-call timeout (1.2 s total)."""
        paths = [f"/items/{i}?delay=0.2" for i in range(6)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=1, per_call_timeout=1.0, deadline=15.0)
        )
        assert kinds(results) == [None] * 6

    @pytest.mark.deep
    @pytest.mark.parametrize(
        ("client_timeout", "per_call_timeout"),
        [(5.0, 0.1), (0.1, 5.0)],
        ids=["per-call-timeout-first", "client-timeout-first"],
    )
    async def test_silent_real_server_times_out_in_waves(
        self, silent_server: SilentServer, client_timeout: float, per_call_timeout: float
    ) -> None:
        """Against a real server that never answers, every call times out on its own, limit at a time."""
        async with real_client(silent_server.port, timeout=client_timeout) as real:
            results, elapsed = await guarded(
                fetch_all(
                    real,
                    [f"/items/{i}" for i in range(6)],
                    max_concurrency=3,
                    per_call_timeout=per_call_timeout,
                    deadline=10.0,
                )
            )
        assert kinds(results) == ["timeout"] * 6
        assert 0.15 < elapsed < 2.0, f"6 calls timing out after 0.1 s, 3 at a time, took {elapsed:.2f} s"


# --------------------------------------------------------------------------- task 6


class TestDeadline:
    """Task 6: an overall deadline cancels whatever is unfinished, and nothing is left running."""

    async def test_deadline_stops_everything_unfinished(
        self, client: httpx.AsyncClient, meter: Meter, transport: RecordingTransport
    ) -> None:
        """At the deadline: finished results kept, calls in flight and calls never sent are 'deadline', nothing left running."""
        await settle()
        before = other_tasks()
        # Limit 2: /items/1 and /items/2 finish at once, both /hang calls then hold the
        # two slots until the deadline, and /items/3 is still waiting for a slot.
        paths = ["/items/1", "/hang?n=1", "/items/2", "/hang?n=2", "/items/3"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=2, per_call_timeout=20.0, deadline=0.2)
        )
        assert [r.path for r in results] == paths, "every path needs a result, even unsent ones"
        assert kinds(results) == [None, "deadline", None, "deadline", "deadline"]
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}]
        assert all(r.message and r.status is None for r in results if r.error == "deadline")
        assert "/items/3" not in transport.sent, "a request was sent after the deadline"
        assert elapsed < 1.5, f"took {elapsed:.2f} s with a 0.2 s deadline"
        leftovers = other_tasks() - before
        assert not leftovers, f"{len(leftovers)} task(s) still running after fetch_all returned"
        assert meter.in_flight == 0, f"{meter.in_flight} request(s) still running in the app"

    @pytest.mark.deep
    async def test_deadline_cancels_unfinished_calls(self, client: httpx.AsyncClient) -> None:
        """At the deadline, hanging calls are reported as 'deadline'; finished ones are kept."""
        paths = ["/items/1", "/hang?n=1", "/items/2?delay=0.05", "/hang?n=2", "/status/500"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=5, per_call_timeout=20.0, deadline=0.5)
        )
        assert [r.path for r in results] == paths
        assert kinds(results) == [None, "deadline", None, "deadline", "http_error"]
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}]
        assert all(r.message and r.status is None for r in results if r.error == "deadline")
        assert elapsed < 2.0, f"took {elapsed:.2f} s with a 0.5 s deadline"

    @pytest.mark.deep
    async def test_calls_never_started_report_deadline(
        self, client: httpx.AsyncClient, transport: RecordingTransport
    ) -> None:
        """Paths still waiting for a slot at the deadline are reported as 'deadline' and never sent."""
        paths = ["/items/1", "/hang", "/items/2", "/items/3"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=1, per_call_timeout=20.0, deadline=0.5)
        )
        assert [r.path for r in results] == paths, "every path needs a result, even unstarted ones"
        assert kinds(results) == [None, "deadline", "deadline", "deadline"]
        assert transport.sent == ["/items/1", "/hang"], "after the deadline no new request may start"
        assert elapsed < 2.0, f"took {elapsed:.2f} s with a 0.5 s deadline"

    @pytest.mark.deep
    async def test_nothing_left_running_after_return(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """When fetch_all returns, no task it started still runs and no request is in flight."""
        await settle()
        before = other_tasks()
        paths = ["/items/1"] + [f"/hang?n={i}" for i in range(6)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=3, per_call_timeout=20.0, deadline=0.3)
        )
        assert kinds(results) == [None] + ["deadline"] * 6
        leftovers = other_tasks() - before
        assert not leftovers, f"{len(leftovers)} task(s) still running after fetch_all returned"
        assert meter.in_flight == 0, f"{meter.in_flight} request(s) still running in the app"

    async def test_cancelling_the_caller_propagates(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """Cancelling fetch_all itself raises CancelledError in the caller and stops every call."""
        await settle()
        before = other_tasks()
        paths = [f"/hang?n={i}" for i in range(3)]
        task = asyncio.create_task(
            fetch_all(client, paths, max_concurrency=3, per_call_timeout=20.0, deadline=20.0)
        )
        await assert_cancellation_propagates(task, "fetch_all", lambda: meter.in_flight == 3)
        await settle()
        leftovers = other_tasks() - before - {task}
        assert not leftovers, f"{len(leftovers)} task(s) still running after the cancellation"
        assert meter.in_flight == 0, f"{meter.in_flight} request(s) still running in the app"

    @pytest.mark.deep
    async def test_callers_own_timeout_still_works(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """A caller's asyncio.timeout around fetch_all fires as TimeoutError, and stops every call."""
        await settle()
        before = other_tasks()
        paths = ["/items/1"] + [f"/hang?n={i}" for i in range(3)]

        async def impatient_caller() -> list[Any]:
            async with asyncio.timeout(0.2):
                return await fetch_all(client, paths, max_concurrency=2, per_call_timeout=20.0, deadline=20.0)

        task = asyncio.create_task(impatient_caller())
        with anyio.fail_after(GUARD_S):
            await asyncio.wait({task})
        error = None if task.cancelled() else task.exception()
        if not isinstance(error, TimeoutError):
            outcome = "ended cancelled" if task.cancelled() else (
                f"raised {error!r}" if error is not None else f"returned {task.result()!r}"
            )
            pytest.fail(f"the caller's timeout should raise TimeoutError in the caller, but {outcome}")
        await settle()
        leftovers = other_tasks() - before
        assert not leftovers, f"{len(leftovers)} task(s) still running after the caller's timeout"
        assert meter.in_flight == 0, f"{meter.in_flight} request(s) still running in the app"

    @pytest.mark.deep
    async def test_deadline_only_when_needed(self, client: httpx.AsyncClient) -> None:
        """Work that finishes before the deadline is not cut short: all succeed, none 'deadline'."""
        paths = [f"/items/{i}?delay=0.1" for i in range(6)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=3, per_call_timeout=5.0, deadline=2.0)
        )
        assert kinds(results) == [None] * 6

    @pytest.mark.deep
    async def test_deadline_closes_real_connections(self, silent_server: SilentServer) -> None:
        """Against a real silent server, the deadline ends every call and closes every connection."""
        await settle()
        before = other_tasks()
        async with real_client(silent_server.port, timeout=20.0) as real:
            results, elapsed = await guarded(
                fetch_all(
                    real,
                    [f"/items/{i}" for i in range(5)],
                    max_concurrency=2,
                    per_call_timeout=20.0,
                    deadline=0.2,
                )
            )
            assert kinds(results) == ["deadline"] * 5
            assert elapsed < 1.5, f"took {elapsed:.2f} s with a 0.2 s deadline"
            leftovers = {t for t in other_tasks() - before if not silent_server.owns(t)}
            assert not leftovers, f"{len(leftovers)} task(s) still running after fetch_all returned"
            closed = await until(lambda: silent_server.open_connections == 0)
            assert closed, f"{silent_server.open_connections} connection(s) left open by cancelled calls"


# --------------------------------------------------------------------------- task 7


class TestValidation:
    """Task 7: bad arguments raise before any request is sent."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_concurrency": 0},
            {"max_concurrency": -3},
            {"per_call_timeout": 0.0},
            {"per_call_timeout": -1.0},
            {"deadline": 0.0},
            {"deadline": -0.5},
        ],
        ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
    )
    @pytest.mark.parametrize("paths", [["/items/1"], []], ids=["one-path", "no-paths"])
    async def test_bad_numbers_raise_value_error(
        self,
        client: httpx.AsyncClient,
        transport: RecordingTransport,
        kwargs: dict[str, float],
        paths: list[str],
    ) -> None:
        """max_concurrency < 1, per_call_timeout <= 0, deadline <= 0: ValueError naming the argument, even with no paths."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            await guarded(fetch_all(client, paths, **kwargs))  # type: ignore[arg-type]
        assert transport.sent == [], "validate before sending any request"

    async def test_single_string_raises_type_error(
        self, client: httpx.AsyncClient, transport: RecordingTransport
    ) -> None:
        """paths given as one string (a sequence of characters!) raises TypeError."""
        call: Callable[..., Awaitable[Any]] = ex.fetch_all
        with pytest.raises(TypeError):
            await guarded(
                call(client, "/items/1", max_concurrency=2, per_call_timeout=1.0, deadline=1.0)
            )
        assert transport.sent == []
