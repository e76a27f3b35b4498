"""Tests for ex02: a concurrent fetcher over an in-process API.

The tests own a small FastAPI app with fast, slow, failing, non-JSON and
hanging endpoints, wrapped in a meter that records how many requests are
inside the app at once (the peak is what "bounded concurrency" means to the
server). A wrapping transport simulates a dependency that refuses connections.
Every call of the code under test runs under a guard (anyio.fail_after), so a
wrong solution fails with a message instead of hanging the test run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coursekit.impl import load

ex = load("ex02_async_python")

pytestmark = pytest.mark.anyio

HANG_S = 30.0  # how long /hang would take: far beyond any sane timeout below
GUARD_S = 20.0  # a test fails (instead of hanging) if the code under test takes this long
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


class RefusingTransport(httpx.AsyncBaseTransport):
    """Paths under /down never reach the app: the 'connection' is refused."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/down"):
            await asyncio.sleep(0)
            raise httpx.ConnectError("connection refused (simulated)", request=request)
        return await self.inner.handle_async_request(request)


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int, delay: float = 0.0) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"id": item_id}

    @app.get("/status/{code}")
    async def status(code: int, delay: float = 0.0) -> Response:
        await asyncio.sleep(delay)
        return JSONResponse({"detail": f"status {code}"}, status_code=code)

    @app.get("/text")
    async def text() -> Response:
        return PlainTextResponse("this is not JSON")

    @app.get("/hang")
    async def hang(n: int = 0) -> dict[str, Any]:
        await asyncio.sleep(HANG_S)
        return {"hung": n}

    return app


@pytest.fixture
def meter() -> Meter:
    return Meter(make_app())


@pytest.fixture
async def client(meter: Meter) -> AsyncIterator[httpx.AsyncClient]:
    transport = RefusingTransport(httpx.ASGITransport(app=meter))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def guarded(call: Awaitable[T]) -> tuple[T, float]:
    """Await ``call`` under the guard; return its result and the wall time it took."""
    started = time.perf_counter()
    try:
        with anyio.fail_after(GUARD_S):
            result = await call
    except TimeoutError:
        pytest.fail(f"the call did not return within {GUARD_S:.0f} s (does it hang?)")
    return result, time.perf_counter() - started


def fetch_all(
    client: httpx.AsyncClient,
    paths: list[str],
    *,
    max_concurrency: int = 4,
    per_call_timeout: float = 5.0,
    deadline: float = 10.0,
) -> Awaitable[list[Any]]:
    return ex.fetch_all(
        client,
        paths,
        max_concurrency=max_concurrency,
        per_call_timeout=per_call_timeout,
        deadline=deadline,
    )


def kinds(results: list[Any]) -> list[str | None]:
    return [r.error for r in results]


def other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def settle() -> None:
    """Give the loop a few turns: a task cancelled but not awaited is still pending."""
    for _ in range(3):
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- task 1


class TestFetchOne:
    """Task 1: fetch_one classifies one call and never raises for a failure."""

    async def test_success_returns_status_and_json(self, client: httpx.AsyncClient) -> None:
        """A 200 gives ok=True, status 200, the decoded JSON as value and no error."""
        result, _ = await guarded(ex.fetch_one(client, "/items/7", per_call_timeout=5.0))
        assert result == ex.FetchResult(path="/items/7", status=200, value={"id": 7})
        assert result.ok

    @pytest.mark.parametrize("code", [500, 503, 404])
    async def test_error_status_is_http_error(self, client: httpx.AsyncClient, code: int) -> None:
        """A non-2xx response is reported as error 'http_error' with its status and a message."""
        result, _ = await guarded(ex.fetch_one(client, f"/status/{code}", per_call_timeout=5.0))
        assert (result.path, result.status, result.error) == (f"/status/{code}", code, "http_error")
        assert not result.ok
        assert result.value is None
        assert result.message, "a failure needs a message saying what happened"

    async def test_body_that_is_not_json_is_http_error(self, client: httpx.AsyncClient) -> None:
        """A 200 whose body is not JSON is an 'http_error' (status 200), not a crash."""
        result, _ = await guarded(ex.fetch_one(client, "/text", per_call_timeout=5.0))
        assert (result.status, result.error, result.value) == (200, "http_error", None)
        assert result.message

    async def test_connection_error_is_transport_error(self, client: httpx.AsyncClient) -> None:
        """A refused connection is reported as 'transport_error' with status None."""
        result, _ = await guarded(ex.fetch_one(client, "/down/1", per_call_timeout=5.0))
        assert (result.path, result.status, result.error) == ("/down/1", None, "transport_error")
        assert result.message

    async def test_hanging_call_times_out(self, client: httpx.AsyncClient, meter: Meter) -> None:
        """A hanging call is reported as 'timeout' soon after the timeout, not after the hang."""
        result, elapsed = await guarded(ex.fetch_one(client, "/hang", per_call_timeout=0.2))
        assert (result.status, result.error) == (None, "timeout"), (
            "httpx's own timeouts are not enforced by the in-process ASGITransport: "
            "use asyncio.timeout"
        )
        assert result.message
        assert elapsed < HANG_S / 6, f"took {elapsed:.1f} s for a 0.2 s timeout"
        assert meter.in_flight == 0, "the timed-out request is still running inside the app"

    async def test_cancellation_propagates(self, client: httpx.AsyncClient) -> None:
        """Cancelling fetch_one cancels it: CancelledError propagates, it is not made a result."""
        task = asyncio.create_task(ex.fetch_one(client, "/hang", per_call_timeout=10.0))
        await assert_cancellation_propagates(task, "fetch_one", settle_s=0.1)


async def assert_cancellation_propagates(
    task: asyncio.Task[Any], name: str, *, settle_s: float
) -> None:
    """Let ``task`` start its hanging calls, cancel it, and require that it ends cancelled."""
    await asyncio.sleep(settle_s)
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
            f"{name} swallowed the cancellation and {outcome}: never catch CancelledError "
            "without re-raising, or a caller's timeout can no longer stop it"
        )


# --------------------------------------------------------------------------- task 2


class TestBoundedConcurrency:
    """Task 2: concurrent, never more than max_concurrency requests in flight."""

    @pytest.mark.parametrize("limit", [1, 3, 5])
    async def test_peak_in_flight_equals_limit(
        self, client: httpx.AsyncClient, meter: Meter, limit: int
    ) -> None:
        """With more paths than the limit, the app sees exactly max_concurrency requests at peak."""
        paths = [f"/items/{i}?delay=0.1" for i in range(4 * limit)]
        results, _ = await guarded(fetch_all(client, paths, max_concurrency=limit))
        assert all(r.ok for r in results), kinds(results)
        assert meter.started == len(paths), "every path must be requested exactly once"
        assert meter.peak <= limit, f"{meter.peak} requests were in flight at once, limit {limit}"
        assert meter.peak == limit, (
            f"peak in flight was {meter.peak} with limit {limit}: the calls do not overlap enough"
        )

    async def test_fewer_paths_than_limit_all_run_at_once(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """With 4 paths and a limit of 10, all 4 requests are in flight together."""
        paths = [f"/items/{i}?delay=0.1" for i in range(4)]
        results, _ = await guarded(fetch_all(client, paths, max_concurrency=10))
        assert all(r.ok for r in results), kinds(results)
        assert meter.peak == 4, f"peak in flight was {meter.peak}, expected all 4 at once"

    async def test_concurrency_cuts_wall_time(self, client: httpx.AsyncClient) -> None:
        """8 calls of 0.15 s with limit 4 take well under the 1.2 s a sequential loop needs."""
        paths = [f"/items/{i}?delay=0.15" for i in range(8)]
        _, elapsed = await guarded(fetch_all(client, paths, max_concurrency=4))
        sequential = 8 * 0.15
        assert elapsed < sequential / 1.5, f"{elapsed:.2f} s vs {sequential:.2f} s sequential"

    async def test_failures_release_their_slot(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """Failed and timed-out calls free their slot: later paths run, the bound still holds."""
        paths = ["/hang", "/status/500", "/down/1", "/hang", "/text"] + [
            f"/items/{i}?delay=0.05" for i in range(6)
        ]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=2, per_call_timeout=0.3, deadline=10.0)
        )
        assert kinds(results) == [
            "timeout", "http_error", "transport_error", "timeout", "http_error",
        ] + [None] * 6  # fmt: skip
        assert meter.peak == 2, f"peak in flight was {meter.peak}, limit 2"


# --------------------------------------------------------------------------- task 3


class TestResults:
    """Task 3: one result per path, in input order, failures kept."""

    async def test_results_in_input_order(self, client: httpx.AsyncClient) -> None:
        """Results follow the order of `paths`, not the order in which the calls finished."""
        delays = [0.3, 0.05, 0.2, 0.0, 0.1, 0.25]
        paths = [f"/items/{i}?delay={d}" for i, d in enumerate(delays)]
        results, _ = await guarded(fetch_all(client, paths, max_concurrency=6))
        assert [r.path for r in results] == paths
        assert [r.value for r in results] == [{"id": i} for i in range(len(paths))]

    async def test_duplicates_each_get_a_result(self, client: httpx.AsyncClient) -> None:
        """A path listed twice gets two results, one at each position."""
        paths = ["/items/1", "/items/2", "/items/1"]
        results, _ = await guarded(fetch_all(client, paths))
        assert [r.path for r in results] == paths
        assert [r.value for r in results] == [{"id": 1}, {"id": 2}, {"id": 1}]

    async def test_partial_results_keep_successes(self, client: httpx.AsyncClient) -> None:
        """Each failure is reported in its own result; the successes around it are kept."""
        paths = [
            "/items/1", "/status/500", "/items/2", "/down/x", "/status/404", "/text",
            "/items/3?delay=0.1",
        ]  # fmt: skip
        results, _ = await guarded(fetch_all(client, paths, max_concurrency=3))
        assert [r.path for r in results] == paths
        assert kinds(results) == [
            None, "http_error", None, "transport_error", "http_error", "http_error", None,
        ]  # fmt: skip
        assert [r.status for r in results] == [200, 500, 200, None, 404, 200, 200]
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}, {"id": 3}]
        assert all(r.message for r in results if not r.ok), "every failure needs a message"

    async def test_results_are_frozen_fetch_results(self, client: httpx.AsyncClient) -> None:
        """fetch_all returns a list of FetchResult, which are immutable."""
        results, _ = await guarded(fetch_all(client, ["/items/1"]))
        assert isinstance(results, list)
        assert all(isinstance(r, ex.FetchResult) for r in results)
        with pytest.raises(dataclasses.FrozenInstanceError):
            results[0].status = 500

    async def test_empty_input_gives_empty_list(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """No paths: an empty list back and no request made."""
        results, _ = await guarded(fetch_all(client, []))
        assert results == []
        assert meter.started == 0


# --------------------------------------------------------------------------- task 4


class TestPerCallTimeout:
    """Task 4: each call has its own timeout."""

    async def test_hanging_path_times_out_alone(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """A hanging endpoint yields 'timeout' for that path only, soon after per_call_timeout."""
        paths = ["/items/1", "/hang", "/items/2?delay=0.1", "/items/3"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=4, per_call_timeout=0.3, deadline=15.0)
        )
        assert kinds(results) == [None, "timeout", None, None], (
            "expected only /hang to time out (httpx's own timeouts are not enforced by the "
            "in-process ASGITransport: use asyncio.timeout)"
        )
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}, {"id": 3}]
        assert elapsed < HANG_S / 6, f"took {elapsed:.1f} s with a 0.3 s per-call timeout"
        assert meter.in_flight == 0, "the timed-out request is still running inside the app"

    async def test_timeout_is_per_call_not_per_batch(self, client: httpx.AsyncClient) -> None:
        """6 calls of 0.2 s, one at a time, all succeed with a 1 s per-call timeout (1.2 s total)."""
        paths = [f"/items/{i}?delay=0.2" for i in range(6)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=1, per_call_timeout=1.0, deadline=15.0)
        )
        assert kinds(results) == [None] * 6, (
            "a call timed out although each one takes 0.2 s of its 1 s: the timeout must cover "
            "one request, not the batch and not the wait for a free slot"
        )


# --------------------------------------------------------------------------- task 5


class TestDeadline:
    """Task 5: an overall deadline cancels what is left."""

    async def test_deadline_cancels_unfinished_calls(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """At the deadline, hanging calls are reported as 'deadline'; finished ones are kept."""
        paths = ["/items/1", "/hang?n=1", "/items/2?delay=0.05", "/hang?n=2", "/status/500"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=5, per_call_timeout=20.0, deadline=0.5)
        )
        assert [r.path for r in results] == paths
        assert kinds(results) == [None, "deadline", None, "deadline", "http_error"]
        assert [r.value for r in results if r.ok] == [{"id": 1}, {"id": 2}]
        assert all(r.message and r.status is None for r in results if r.error == "deadline")
        assert elapsed < HANG_S / 6, f"took {elapsed:.1f} s with a 0.5 s deadline"

    async def test_calls_never_started_report_deadline(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """Paths still waiting for a slot at the deadline are reported as 'deadline' too."""
        paths = ["/items/1", "/hang", "/items/2", "/items/3"]
        results, elapsed = await guarded(
            fetch_all(client, paths, max_concurrency=1, per_call_timeout=20.0, deadline=0.5)
        )
        assert [r.path for r in results] == paths, "every path needs a result, even unstarted ones"
        assert kinds(results) == [None, "deadline", "deadline", "deadline"]
        assert meter.started == 2, "after the deadline no new request may start"
        assert elapsed < HANG_S / 6

    async def test_nothing_left_running_after_return(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """When fetch_all returns, no task it started still runs and no request is in flight."""
        await settle()
        before = other_tasks()
        paths = ["/items/1"] + [f"/hang?n={i}" for i in range(4)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=3, per_call_timeout=20.0, deadline=0.3)
        )
        assert kinds(results) == [None] + ["deadline"] * 4
        leftovers = other_tasks() - before
        assert not leftovers, f"{len(leftovers)} task(s) still running: cancel AND await them"
        assert meter.in_flight == 0, f"{meter.in_flight} request(s) still running in the app"

    async def test_deadline_only_when_needed(self, client: httpx.AsyncClient) -> None:
        """Work that finishes before the deadline is not cut short: all succeed, none 'deadline'."""
        paths = [f"/items/{i}?delay=0.1" for i in range(6)]
        results, _ = await guarded(
            fetch_all(client, paths, max_concurrency=3, per_call_timeout=5.0, deadline=5.0)
        )
        assert kinds(results) == [None] * 6

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
        await assert_cancellation_propagates(task, "fetch_all", settle_s=0.2)
        await settle()
        leftovers = other_tasks() - before - {task}
        assert not leftovers, f"{len(leftovers)} task(s) still running after the cancellation"
        assert meter.in_flight == 0, f"{meter.in_flight} request(s) still running in the app"


# --------------------------------------------------------------------------- task 6


class TestValidation:
    """Task 6: bad arguments raise before any request."""

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
        meter: Meter,
        kwargs: dict[str, float],
        paths: list[str],
    ) -> None:
        """max_concurrency < 1, per_call_timeout <= 0, deadline <= 0: ValueError naming it."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            await guarded(fetch_all(client, paths, **kwargs))  # type: ignore[arg-type]
        assert meter.started == 0, "validate before sending any request"

    async def test_single_string_raises_type_error(
        self, client: httpx.AsyncClient, meter: Meter
    ) -> None:
        """paths given as one string (a sequence of characters!) raises TypeError."""
        call: Callable[..., Awaitable[Any]] = ex.fetch_all
        with pytest.raises(TypeError):
            await guarded(
                call(client, "/items/1", max_concurrency=2, per_call_timeout=1.0, deadline=1.0)
            )
        assert meter.started == 0
