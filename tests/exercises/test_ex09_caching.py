"""ex09 · A TTL cache with single flight, and ETags for the catalog endpoints.

The contract is the docstring of ``exercises/ex09_caching.py``. No test sleeps to
wait for an expiry: the cache and the app take a clock, and the tests move a
manual one. Concurrency is real (asyncio tasks on one loop); it is measured by
counting backend calls and the loads running at once, never by wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from coursekit.impl import load

ex = load("ex09_caching")

pytestmark = pytest.mark.anyio

STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e]+"')
WAIT_S = 2.0  # no await in these tests needs more than a few ms; a hang fails after this


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    """A loader that counts its calls and the calls running at once."""

    def __init__(self, value: Any = "value", *, delay: float = 0.0, error: Exception | None = None) -> None:
        self.value = value
        self.delay = delay
        self.error = error
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.release: anyio.Event | None = None  # when set, loads wait for it

    async def __call__(self) -> Any:
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.release is not None:
                await self.release.wait()
            if self.delay:
                await anyio.sleep(self.delay)
            if self.error is not None:
                raise self.error
            return self.value
        finally:
            self.in_flight -= 1


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def within(what: str) -> AsyncIterator[None]:
    """Fail with a plain message (not a bare TimeoutError) when ``what`` hangs."""
    try:
        with anyio.fail_after(WAIT_S):
            yield
    except TimeoutError:
        pytest.fail(f"{what} was still waiting after {WAIT_S:.0f} s: it hangs", pytrace=False)


async def cancel_all(tasks: list[asyncio.Future[Any]]) -> None:
    """Leave nothing running, whatever the code under test did."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def gather_all(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls concurrently; each result is its value or the exception it raised."""
    tasks = [asyncio.ensure_future(call()) for call in calls]
    try:
        async with within("a concurrent call"):
            return await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await cancel_all(tasks)


# ----------------------------------------------------------------------------- task 1


class TestTTLCache:
    """Task 1: a TTL cache: hits, expiry on a clock, invalidation, a bounded size."""

    async def test_second_call_is_a_hit(self) -> None:
        """A second call within the TTL returns the stored value without calling the loader."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader({"id": 1})
        first = await cache.get_or_load("book:1", loader)
        second = await cache.get_or_load("book:1", loader)
        assert first == second == {"id": 1}
        assert loader.calls == 1, f"the loader ran {loader.calls} times for 2 calls within the TTL"

    async def test_keys_are_independent(self) -> None:
        """Each key has its own value and its own load."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        one, two = CountingLoader("one"), CountingLoader("two")
        assert await cache.get_or_load(1, one) == "one"
        assert await cache.get_or_load(2, two) == "two"
        assert await cache.get_or_load(1, two) == "one"
        assert (one.calls, two.calls) == (1, 1)

    async def test_stale_at_exactly_the_ttl(self) -> None:
        """A value is fresh just before ttl seconds and stale at exactly ttl seconds."""
        clock = ManualClock(1000.0)
        cache = ex.TTLCache(ttl=30.0, clock=clock)
        loader = CountingLoader()
        await cache.get_or_load("k", loader)
        clock.now = 1029.999
        await cache.get_or_load("k", loader)
        assert loader.calls == 1, "a value 29.999 s old (TTL 30 s) was loaded again"
        clock.now = 1030.0
        await cache.get_or_load("k", loader)
        assert loader.calls == 2, "a value exactly 30 s old (TTL 30 s) was still served"

    async def test_ttl_counts_from_the_end_of_the_load(self) -> None:
        """The TTL counts from when the load finished, not from when it was asked for."""
        clock = ManualClock(1000.0)
        cache = ex.TTLCache(ttl=30.0, clock=clock)

        async def slow_load() -> str:
            clock.now += 10.0  # the backend took 10 s
            return "value"

        await cache.get_or_load("k", slow_load)
        clock.now = 1035.0  # 35 s after the call, 25 s after the value was read
        loader = CountingLoader()
        await cache.get_or_load("k", loader)
        assert loader.calls == 0, "a value read 25 s ago (TTL 30 s) was loaded again"

    async def test_invalidate_forces_a_reload(self) -> None:
        """After invalidate(key) the next call loads again; other keys keep their values."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader("old")
        await cache.get_or_load("a", loader)
        await cache.get_or_load("b", loader)
        cache.invalidate("a")
        cache.invalidate("never-stored")  # no error
        loader.value = "new"
        assert await cache.get_or_load("a", loader) == "new"
        assert await cache.get_or_load("b", loader) == "old"
        assert loader.calls == 3

    async def test_stats_count_hits_and_misses(self) -> None:
        """stats counts hits and misses; hit_ratio = hits / (hits + misses)."""
        clock = ManualClock()
        cache = ex.TTLCache(ttl=30.0, clock=clock)
        loader = CountingLoader()
        for _ in range(4):
            await cache.get_or_load("k", loader)
        clock.now += 30.0
        await cache.get_or_load("k", loader)
        stats = cache.stats
        assert (stats.hits, stats.misses) == (3, 2)
        assert stats.hit_ratio == pytest.approx(0.6)

    async def test_bad_settings_are_refused(self) -> None:
        """TTLCache(ttl=0) and TTLCache(max_entries=0) raise ValueError."""
        for settings in ({"ttl": 0.0}, {"ttl": -1.0}, {"ttl": 30.0, "max_entries": 0}):
            with pytest.raises(ValueError):  # noqa: PT011 (the contract names only the class)
                ex.TTLCache(clock=ManualClock(), **settings)

    async def test_bounded_size_evicts_the_least_recently_used(self) -> None:
        """With max_entries=2, a third key evicts the key used least recently (a hit is a use)."""
        cache = ex.TTLCache(ttl=30.0, max_entries=2, clock=ManualClock())
        loaders = {key: CountingLoader(key) for key in "abc"}
        await cache.get_or_load("a", loaders["a"])
        await cache.get_or_load("b", loaders["b"])
        await cache.get_or_load("a", loaders["a"])  # a is now used more recently than b
        await cache.get_or_load("c", loaders["c"])
        assert len(cache) == 2, f"the cache holds {len(cache)} values with max_entries=2"
        await cache.get_or_load("a", loaders["a"])
        assert loaders["a"].calls == 1, "the recently used key was evicted"
        await cache.get_or_load("b", loaders["b"])
        assert loaders["b"].calls == 2, "the least recently used key was kept"


# ----------------------------------------------------------------------------- task 2


class TestSingleFlight:
    """Task 2: single flight: concurrent misses, errors, cancellation, invalidation in flight."""

    async def test_concurrent_misses_make_one_backend_call(self) -> None:
        """50 concurrent misses of one key make exactly 1 loader call and all get its value."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader("value", delay=0.01)
        results = await gather_all([lambda: cache.get_or_load("k", loader)] * 50)
        assert loader.calls == 1, f"50 concurrent misses made {loader.calls} loader calls"
        assert results == ["value"] * 50

    async def test_callers_joining_a_load_count_as_misses(self) -> None:
        """Callers that wait for a load in flight are misses: 10 concurrent calls, 0 hits, 10 misses."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader("value", delay=0.01)
        await gather_all([lambda: cache.get_or_load("k", loader)] * 10)
        stats = cache.stats
        assert (stats.hits, stats.misses) == (0, 10), f"hits, misses = {stats.hits}, {stats.misses}"

    async def test_different_keys_load_concurrently(self) -> None:
        """Misses of 5 different keys load at the same time: one key never waits for another."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader("value", delay=0.02)
        await gather_all([lambda key=key: cache.get_or_load(key, loader) for key in range(5)])
        assert loader.calls == 5
        assert loader.peak_in_flight == 5, (
            f"at most {loader.peak_in_flight} of 5 loads of different keys ran at once"
        )

    async def test_an_error_reaches_every_waiter_and_is_not_cached(self) -> None:
        """A loader error reaches all 10 waiters, nothing is stored, and the next call loads again."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader(delay=0.01, error=ConnectionError("catalog down"))
        results = await gather_all([lambda: cache.get_or_load("k", loader)] * 10)
        assert loader.calls == 1, (
            f"10 concurrent misses of a failing load made {loader.calls} loader calls "
            "(a backend in trouble got one call per waiter)"
        )
        assert all(isinstance(r, ConnectionError) for r in results), [type(r).__name__ for r in results]
        assert len(cache) == 0, "a failed load left a value in the cache"
        loader.error = None
        async with within("the call after a failed load"):
            assert await cache.get_or_load("k", loader) == "value"
        assert loader.calls == 2, "the call after a failed load did not load again"

    async def test_calls_after_an_error_get_their_own_load(self) -> None:
        """After a failed load, each later call retries (it neither hangs nor gets the old error)."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader(error=ValueError("bad row"))
        for _ in range(3):
            async with within("a call after a failed load"):
                with pytest.raises(ValueError, match="bad row"):
                    await cache.get_or_load("k", loader)
        assert loader.calls == 3, f"3 calls after failures made {loader.calls} loader calls"

    async def test_cancelling_the_first_waiter_spares_the_others(self) -> None:
        """Cancelling the caller that started a load leaves the others their value, loaded once."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        loader = CountingLoader("value")
        loader.release = anyio.Event()
        first = asyncio.ensure_future(cache.get_or_load("k", loader))
        await settle()
        others = [asyncio.ensure_future(cache.get_or_load("k", loader)) for _ in range(5)]
        try:
            await settle()
            first.cancel()
            await settle()
            loader.release.set()
            async with within("a caller waiting for the cancelled caller's load"):
                results = await asyncio.gather(*others, return_exceptions=True)
        finally:
            loader.release.set()
            await cancel_all([first, *others])
        assert first.cancelled()
        outcomes = [r if isinstance(r, str) else type(r).__name__ for r in results]
        assert outcomes == ["value"] * 5, f"the 5 other waiters got {outcomes}"
        assert loader.calls == 1, f"the waiters made {loader.calls} loader calls"
        assert await cache.get_or_load("k", loader) == "value"
        assert loader.calls == 1, "the value loaded for the remaining waiters was not stored"

    async def test_invalidate_during_a_load_does_not_store_its_stale_value(self) -> None:
        """invalidate() during a load: later calls load the new data; the old load's value is not stored."""
        cache = ex.TTLCache(ttl=30.0, clock=ManualClock())
        old = CountingLoader("old price")
        old.release = anyio.Event()
        early = asyncio.ensure_future(cache.get_or_load("k", old))
        try:
            await settle()
            cache.invalidate("k")  # the price changed while the old price was being read
            new = CountingLoader("new price")
            async with within("a call made after invalidate(), while the old load was running,"):
                after = await cache.get_or_load("k", new)
            assert after == "new price", "a call after invalidate() got the value of a load started before it"
            old.release.set()
            async with within("the caller of the load started before invalidate()"):
                assert await early == "old price"  # it asked before the change
            assert await cache.get_or_load("k", new) == "new price", (
                "the load started before invalidate() stored its stale value"
            )
            assert new.calls == 1
        finally:
            old.release.set()
            await cancel_all([early])


# ----------------------------------------------------------------------------- task 3


class TestValidators:
    """Task 3: strong ETags and If-None-Match (RFC 9110)."""

    def test_etag_is_a_strong_tag_of_the_bytes(self) -> None:
        """etag_for gives a quoted strong tag, the same for equal bytes and different for other bytes."""
        body = b'{"id":1,"title":"Dune","price":"9.99"}'
        tag = ex.etag_for(body)
        assert STRONG_ETAG.fullmatch(tag), f"{tag!r} is not a strong entity tag (quoted, no W/)"
        assert ex.etag_for(bytes(bytearray(body))) == tag, "equal bytes (another object) got another tag"
        assert ex.etag_for(body.replace(b"9.99", b"9.98")) != tag

    @pytest.mark.parametrize(
        ("header", "etag", "expected"),
        [
            ('"abc"', '"abc"', True),
            ('"abc"', '"abd"', False),
            ('W/"abc"', '"abc"', True),
            ('"abc"', 'W/"abc"', True),
            ('"x", "abc"', '"abc"', True),
            ('"x",W/"abc" , "y"', '"abc"', True),
            ('"x", "y"', '"abc"', False),
            ("*", '"abc"', True),
            ('"a,b"', '"a,b"', True),
            ('"a", "b"', '"a,b"', False),
            ("abc", '"abc"', False),
            (None, '"abc"', False),
        ],
    )
    def test_if_none_match(self, header: str | None, etag: str, expected: bool) -> None:
        """If-None-Match matches by weak comparison, in a list of tags or with *."""
        assert ex.if_none_match(header, etag) is expected, (
            f"if_none_match({header!r}, {etag!r}) should be {expected}"
        )


# ----------------------------------------------------------------------------- task 4


class Api:
    def __init__(self, *, ttl: float = 60.0) -> None:
        self.catalog = ex.Catalog(delay=0.005)
        self.clock = ManualClock()
        self.app = ex.create_app(self.catalog, ttl=ttl, clock=self.clock)
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    under_test = Api(ttl=60.0)
    async with under_test.client:
        yield under_test


def directives(response: httpx.Response) -> set[str]:
    return {
        part.strip().lower() for part in response.headers.get("cache-control", "").split(",") if part.strip()
    }


def assert_problem(response: httpx.Response, status: int) -> None:
    __tracebackhide__ = True
    assert response.status_code == status, (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status
    assert directives(response) == {"no-store"}, f"an error had Cache-Control {directives(response)}"


class TestEndpoints:
    """Task 4: the catalog endpoints: cached, with ETag, 304 and Cache-Control."""

    async def test_book_has_etag_and_cache_control(self, api: Api) -> None:
        """GET /books/1 is 200 with the book, ETag = etag_for(body) and Cache-Control: public, no-cache."""
        response = await api.client.get("/books/1")
        assert response.status_code == 200
        assert response.json() == {"id": 1, "title": "Dune", "price": "9.99"}
        assert response.headers.get("etag") == ex.etag_for(response.content)
        assert directives(response) == {"public", "no-cache"}

    async def test_repeated_gets_within_the_ttl_make_one_backend_call(self, api: Api) -> None:
        """5 GETs of a book within the TTL make 1 backend call; after the TTL, one more."""
        for _ in range(5):
            assert (await api.client.get("/books/2")).status_code == 200
        assert api.catalog.calls["book"] == 1, f"5 GETs made {api.catalog.calls['book']} backend calls"
        api.clock.now += 60.0
        await api.client.get("/books/2")
        assert api.catalog.calls["book"] == 2, "a GET after the TTL did not reload the book"

    async def test_concurrent_cold_gets_make_one_backend_call(self, api: Api) -> None:
        """20 concurrent GETs of an uncached book make 1 backend call; all get the same 200."""
        responses = await gather_all([lambda: api.client.get("/books/3")] * 20)
        assert {r.status_code for r in responses} == {200}
        assert len({r.headers.get("etag") for r in responses}) == 1
        assert api.catalog.calls["book"] == 1, f"20 concurrent GETs made {api.catalog.calls['book']} calls"

    async def test_revalidation_gets_304_without_a_body(self, api: Api) -> None:
        """GET with a matching If-None-Match is 304, empty body, same ETag and Cache-Control."""
        first = await api.client.get("/books/1")
        etag = first.headers["etag"]
        not_modified = []
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            response = await api.client.get("/books/1", headers={"If-None-Match": header})
            assert response.status_code == 304, f"If-None-Match: {header} got {response.status_code}"
            assert response.content == b"", f"a 304 carried {len(response.content)} body bytes"
            assert response.headers.get("etag") == etag
            assert directives(response) == {"public", "no-cache"}
            not_modified.append(response)
        assert len(not_modified) == 4
        assert api.catalog.calls["book"] == 1

    async def test_etag_is_the_same_in_another_app(self) -> None:
        """Two apps (two processes behind a load balancer) give the same book the same ETag."""
        tags = []
        for _ in range(2):
            under_test = Api()
            async with under_test.client:
                tags.append((await under_test.client.get("/books/1")).headers.get("etag"))
                tags.append((await under_test.client.get("/books")).headers.get("etag"))
        assert tags[0] == tags[2], f"the book's ETags differ between apps: {tags[0]} {tags[2]}"
        assert tags[1] == tags[3], f"the list's ETags differ between apps: {tags[1]} {tags[3]}"

    async def test_price_change_is_visible_at_once(self, api: Api) -> None:
        """After PUT /books/1/price, GET /books/1 and GET /books show the new price with a new ETag."""
        book = await api.client.get("/books/1")
        listing = await api.client.get("/books")
        change = await api.client.put("/books/1/price", json={"price": "11.00"})
        assert change.status_code == 200, change.text[:200]
        new_book = await api.client.get("/books/1", headers={"If-None-Match": book.headers["etag"]})
        new_listing = await api.client.get("/books", headers={"If-None-Match": listing.headers["etag"]})
        assert new_book.status_code == 200, "the old ETag still matched after the price changed"
        assert new_book.json()["price"] == "11.00"
        assert new_book.headers["etag"] != book.headers["etag"]
        assert new_listing.status_code == 200, "the list's old ETag still matched after a price changed"
        assert new_listing.json()[0]["price"] == "11.00"

    async def test_list_is_cached_and_revalidates(self, api: Api) -> None:
        """GET /books lists the 3 books, is served from the cache and answers 304 to its ETag."""
        first = await api.client.get("/books")
        assert [book["id"] for book in first.json()] == [1, 2, 3]
        assert first.headers.get("etag") == ex.etag_for(first.content)
        again = await api.client.get("/books", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert api.catalog.calls["books"] == 1

    async def test_unknown_book_is_a_404_problem_not_cached(self, api: Api) -> None:
        """An unknown book is a 404 problem with Cache-Control: no-store, and is not cached."""
        for _ in range(2):
            assert_problem(await api.client.get("/books/99"), 404)
        assert api.catalog.calls["book"] == 2, "the 404 was served from the cache"
        assert_problem(await api.client.get("/books/99", headers={"If-None-Match": "*"}), 404)

    async def test_bad_input_is_a_422_problem(self, api: Api) -> None:
        """A bad id or price is a 422 problem; an unknown book's price change is a 404 problem."""
        assert_problem(await api.client.get("/books/abc"), 422)
        assert_problem(await api.client.put("/books/1/price", json={"price": "-1"}), 422)
        assert_problem(await api.client.put("/books/1/price", json={"price": "cheap"}), 422)
        assert_problem(await api.client.put("/books/99/price", json={"price": "5.00"}), 404)
        assert (await api.client.get("/books/1")).json()["price"] == "9.99"
