"""Tests for ex10: the lab app, tuned, answers exactly as before.

Every answer is compared with one computed here with plain SQL aggregates over
the same database, so the app's answers are checked, not its code. Budgets are
statement counts (the same on every machine), query plans (no full scan of
order_lines for a book page), and, in the deep stage, behaviour of the app
served by uvicorn: a request held up in the database does not hold up the
others, concurrent buyers never oversell, and a short locust run where the app
serves many times the requests per second of the frozen naive baseline.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, text

from coursekit import db, paths
from coursekit.bookstore import Author, Book, Order, OrderLine, Review, Stock
from coursekit.impl import current_impl, load
from coursekit.querycount import count_queries
from coursekit.servers import port_is_free, start_app
from coursekit.sqlinspect import CapturedStatement, capture_selects, explain, rows_returned

ex = load("ex10_lab_app")

pytestmark = [pytest.mark.db, pytest.mark.anyio]

TARGET = f"{current_impl()}.ex10_lab_app:create_app"
BASELINE = "coursekit.labapp_naive:create_app"
SPEEDUP = 5.0  # generous: the reference serves 15-30x the baseline's requests/s


# ------------------------------------------------------------------- fixtures and reference answers
@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    application = ex.create_app("ex10t")
    yield application
    application.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def engine_of(app: FastAPI) -> Engine:
    engine = app.state.engine
    assert isinstance(engine, Engine), "app.state.engine must be the app's SQLAlchemy Engine"
    return engine


def reference_books(engine: Engine, where: Any = None) -> dict[int, dict[str, Any]]:
    """Every book's catalog fields, from plain aggregates (the answers the app must give)."""
    stats = (
        select(Review.book_id, func.count().label("n"), func.sum(Review.rating).label("total"))
        .group_by(Review.book_id)
        .subquery()
    )
    query = (
        select(Book.id, Book.title, Author.name, Book.genre, Book.price, Book.isbn, stats.c.n, stats.c.total)
        .join(Author)
        .outerjoin(stats, stats.c.book_id == Book.id)
        .order_by(Book.id)
    )
    if where is not None:
        query = query.where(where)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {
        row.id: {
            "id": row.id,
            "title": row.title,
            "author": row.name,
            "genre": row.genre,
            "price": f"{row.price:.2f}",
            "rating": round(row.total / row.n, 2) if row.n else None,
            "reviews": row.n or 0,
            "isbn": row.isbn,
        }
        for row in rows
    }


def reference_stock_sold(engine: Engine, book_id: int) -> tuple[int, int]:
    with engine.connect() as connection:
        stock = connection.scalar(select(Stock.quantity).where(Stock.book_id == book_id)) or 0
        sold = connection.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0))
            .join(Order)
            .where(OrderLine.book_id == book_id, Order.status != "cancelled")
        )
    return stock, int(sold or 0)


def catalog_item(book: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in book.items() if key != "isbn"}


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:200]}"
    )
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


# ------------------------------------------------------------------- Task 1: browse
class TestBrowse:
    """Task 1: Catalog pages in one round trip, cached, deep pages as cheap as the first."""

    @pytest.mark.stub_keeps
    # The first test sets up the module's database: loading the data set into
    # PostgreSQL can take more than a test's usual 5 s on a busy machine.
    @pytest.mark.time_limit(30)
    async def test_pages_match_the_reference(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """Catalog pages (first, deep, last, by genre) list the same books and fields as before."""
        books = list(reference_books(engine_of(app)).values())
        for after, limit in ((0, 20), (1000, 7), (1990, 20), (1995, 50)):
            page = (await client.get("/books", params={"after": after, "limit": limit})).json()
            expected = [catalog_item(b) for b in books if b["id"] > after][:limit]
            assert page["items"] == expected, f"page after={after} limit={limit} differs"
            more = len([b for b in books if b["id"] > after]) > limit
            assert page["next"] == (expected[-1]["id"] if more else None)
        by_genre = [b for b in books if b["genre"] == "history"]
        page = (await client.get("/books", params={"genre": "history", "after": by_genre[30]["id"]})).json()
        assert page["items"] == [catalog_item(b) for b in by_genre[31:51]]

    async def test_a_page_costs_at_most_two_statements(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """A catalog page (first or deep, any genre) sends at most 2 SQL statements."""
        for params in ({"after": 0}, {"after": 1500, "limit": 50}, {"genre": "cooking", "after": 700}):
            with count_queries(engine_of(app)) as sent:
                assert (await client.get("/books", params=params)).status_code == 200
            assert sent.count <= 2, f"GET /books {params} sent {sent.count} statements (budget 2)"

    async def test_a_deep_page_does_not_skip_rows(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """A deep page goes straight to its rows: no OFFSET, no counting of the rows before it."""
        with capture_selects(engine_of(app)) as sent:
            assert (await client.get("/books", params={"after": 1800, "limit": 13})).status_code == 200
        for statement in sent:
            skipped = _offset(statement)
            assert not skipped, f"a deep page skips {skipped} rows with OFFSET:\n{statement.sql}"
            assert "BOOKS.ID <" not in statement.sql.upper(), (
                f"a deep page reads the rows before it:\n{statement.sql}"
            )

    async def test_a_repeated_page_sends_no_sql(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """The same catalog page asked again within 5 seconds sends no SQL at all."""
        params = {"genre": "fantasy", "after": 333, "limit": 9}
        first = (await client.get("/books", params=params)).json()
        with count_queries(engine_of(app)) as sent:
            again = (await client.get("/books", params=params)).json()
        assert again == first
        assert sent.count == 0, f"the repeated page sent {sent.count} statements"
        whole = (await client.get("/books", params={"after": 333, "limit": 9})).json()
        assert [item["id"] for item in whole["items"]] == list(range(334, 343)), (
            "pages of other filters differ"
        )
        with count_queries(engine_of(app)) as sent:
            other = (await client.get("/books", params={**params, "after": first["items"][0]["id"]})).json()
        assert sent.count >= 1, "a different page must not come from the cache"
        assert other["items"][0] == first["items"][1]

    @pytest.mark.stub_keeps
    async def test_bad_parameters_are_problems(self, client: httpx.AsyncClient) -> None:
        """A limit outside 1..50 or a negative cursor is a 422 problem."""
        for params in ({"limit": 0}, {"limit": 51}, {"after": -1}, {"after": "x"}):
            assert_problem(await client.get("/books", params=params), 422)


# ------------------------------------------------------------------- Task 2: search
class TestSearch:
    """Task 2: Search in the database, literal and case-insensitive, cached."""

    @pytest.mark.stub_keeps
    async def test_results_match_the_reference(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """Search finds the first 20 books whose title contains the text, any case, in id order."""
        books = list(reference_books(engine_of(app)).values())
        for q in ("garden", "SHADOW", "Or", "zz", "n s"):
            found = (await client.get("/search", params={"q": q})).json()["items"]
            expected = [
                {"id": b["id"], "title": b["title"], "author": b["author"]}
                for b in books
                if q.lower() in b["title"].lower()
            ][:20]
            assert found == expected, f"search {q!r} differs"

    @pytest.mark.stub_keeps
    async def test_wildcards_are_literal(self, client: httpx.AsyncClient) -> None:
        """Search text with % or _ matches those characters only (no title has them)."""
        for q in ("%%", "__", "a%b", "_a"):
            assert (await client.get("/search", params={"q": q})).json()["items"] == [], q

    async def test_search_costs_at_most_two_statements(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """A search sends at most 2 SQL statements, and a repeated one within 5 s none."""
        with count_queries(engine_of(app)) as sent:
            first = (await client.get("/search", params={"q": "river"})).json()
        assert sent.count <= 2, f"a search sent {sent.count} statements (budget 2)"
        with count_queries(engine_of(app)) as sent:
            assert (await client.get("/search", params={"q": "river"})).json() == first
        assert sent.count == 0, f"the repeated search sent {sent.count} statements"

    async def test_search_does_not_load_the_catalog(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """A search reads at most 20 books from the database, not the whole catalog."""
        with capture_selects(engine_of(app)) as sent:
            assert (await client.get("/search", params={"q": "night"})).status_code == 200
        rows = rows_returned(engine_of(app), sent)
        assert rows <= 20 + 1, f"the search read {rows} rows from the database"

    @pytest.mark.stub_keeps
    async def test_short_or_missing_text_is_a_problem(self, client: httpx.AsyncClient) -> None:
        """Search text shorter than 2 or longer than 50 characters is a 422 problem."""
        for params in ({}, {"q": "a"}, {"q": "x" * 51}):
            assert_problem(await client.get("/search", params=params), 422)


def _offset(statement: CapturedStatement) -> int:
    """The number of rows a statement's OFFSET skips (0 without OFFSET)."""
    found = re.search(r"\bOFFSET\s+(\S+)", statement.sql, flags=re.IGNORECASE)
    if found is None:
        return 0
    token = found.group(1)
    if token == "?":  # SQLite: positional, and OFFSET is the last parameter
        return int(statement.params[-1])
    if token.startswith("%("):  # psycopg: named
        return int(statement.params[token[2 : token.index(")")]])
    return int(token) if token.isdigit() else 1


# ------------------------------------------------------------------- Task 3: a book
class TestBook:
    """Task 3: A book page from an index, in at most 3 statements, never stale."""

    @pytest.mark.stub_keeps
    async def test_books_match_the_reference(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """A book page shows the book's fields, stock and copies sold (cancelled orders left out)."""
        engine = engine_of(app)
        books = reference_books(engine)
        for book_id in (1, 5, 777, 1999, 2000):
            stock, sold = reference_stock_sold(engine, book_id)
            body = (await client.get(f"/books/{book_id}")).json()
            assert body == books[book_id] | {"stock": stock, "sold": sold}, f"book {book_id} differs"

    @pytest.mark.stub_keeps
    async def test_unknown_book_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        """An unknown book id is a 404 problem; a non-number a 422 problem."""
        assert_problem(await client.get("/books/999999"), 404)
        assert_problem(await client.get("/books/abc"), 422)

    async def test_a_book_costs_at_most_three_statements(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """A book page sends at most 3 SQL statements, however many orders and reviews it has."""
        for book_id in (3, 1234):
            with count_queries(engine_of(app)) as sent:
                assert (await client.get(f"/books/{book_id}")).status_code == 200
            assert sent.count <= 3, f"GET /books/{book_id} sent {sent.count} statements (budget 3)"

    async def test_copies_sold_come_from_an_index(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """Counting a book's copies sold does not read every order line in the database."""
        engine = engine_of(app)
        with capture_selects(engine) as sent:
            assert (await client.get("/books/42")).status_code == 200
        for statement in sent:
            plan = explain(engine, statement).lower()
            full_scan = (
                "scan order_lines" in plan and "using" not in plan.split("scan order_lines")[1].split("\n")[0]
            ) or "seq scan on order_lines" in plan
            assert not full_scan, f"this statement reads every order line:\n{statement.sql}\n{plan}"

    @pytest.mark.stub_keeps
    async def test_stock_and_sold_are_never_stale(self, client: httpx.AsyncClient) -> None:
        """Right after an order, the book page shows the new stock and copies sold."""
        before = (await client.get("/books/17")).json()
        placed = await client.post(
            "/orders", json={"customer_id": 3, "lines": [{"book_id": 17, "quantity": 1}]}
        )
        assert placed.status_code == 201, placed.text
        after = (await client.get("/books/17")).json()
        assert (after["stock"], after["sold"]) == (before["stock"] - 1, before["sold"] + 1)


# ------------------------------------------------------------------- Task 4: orders
class TestOrders:
    """Task 4: Orders in a constant number of statements, never overselling."""

    @pytest.mark.stub_keeps
    async def test_an_order_is_placed(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """An order returns 201 with its lines at the books' prices and takes the copies from stock."""
        engine = engine_of(app)
        books = reference_books(engine)
        before = {b: reference_stock_sold(engine, b) for b in (21, 22)}
        body = {"customer_id": 8, "lines": [{"book_id": 21, "quantity": 2}, {"book_id": 22, "quantity": 1}]}
        response = await client.post("/orders", json=body)
        assert response.status_code == 201, response.text
        order = response.json()
        total = 2 * Decimal(books[21]["price"]) + Decimal(books[22]["price"])
        assert {k: v for k, v in order.items() if k != "id"} == {
            "customer_id": 8,
            "status": "paid",
            "total": f"{total:.2f}",
            "lines": [
                {"book_id": 21, "quantity": 2, "unit_price": books[21]["price"]},
                {"book_id": 22, "quantity": 1, "unit_price": books[22]["price"]},
            ],
        }
        assert isinstance(order["id"], int)
        assert reference_stock_sold(engine, 21) == (before[21][0] - 2, before[21][1] + 2)
        assert reference_stock_sold(engine, 22) == (before[22][0] - 1, before[22][1] + 1)

    @pytest.mark.stub_keeps
    async def test_too_few_copies_is_a_409_and_changes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Too few copies of one book: 409 problem, and no stock changes for any line."""
        engine = engine_of(app)
        sold_out = 1  # book 1 has no copies in the data set
        before = reference_stock_sold(engine, 30)
        body = {
            "customer_id": 2,
            "lines": [{"book_id": 30, "quantity": 1}, {"book_id": sold_out, "quantity": 1}],
        }
        assert_problem(await client.post("/orders", json=body), 409)
        assert reference_stock_sold(engine, 30) == before

    @pytest.mark.stub_keeps
    async def test_unknown_customer_or_book_is_a_404(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """An unknown customer or book is a 404 problem and changes no stock."""
        before = reference_stock_sold(engine_of(app), 31)
        line = {"book_id": 31, "quantity": 1}
        assert_problem(await client.post("/orders", json={"customer_id": 99999, "lines": [line]}), 404)
        body = {"customer_id": 1, "lines": [line, {"book_id": 99999, "quantity": 1}]}
        assert_problem(await client.post("/orders", json=body), 404)
        assert reference_stock_sold(engine_of(app), 31) == before

    @pytest.mark.stub_keeps
    async def test_malformed_orders_are_422(self, client: httpx.AsyncClient) -> None:
        """A malformed order (no lines, quantity 0 or 11, a book twice, 11 lines) is a 422 problem."""
        line = {"book_id": 40, "quantity": 1}
        bodies: list[Any] = [
            {"customer_id": 1, "lines": []},
            {"customer_id": 1, "lines": [{"book_id": 40, "quantity": 0}]},
            {"customer_id": 1, "lines": [{"book_id": 40, "quantity": 11}]},
            {"customer_id": 1, "lines": [line, line]},
            {"customer_id": 1, "lines": [{"book_id": 50 + i, "quantity": 1} for i in range(11)]},
            {"lines": [line]},
            "not json",
        ]
        for body in bodies:
            assert_problem(await client.post("/orders", json=body), 422)

    async def test_an_order_costs_four_plus_one_per_line(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """An order of N lines sends at most 4 + N SQL statements."""
        with engine_of(app).begin() as connection:
            connection.execute(text("UPDATE stock SET quantity = 50 WHERE book_id BETWEEN 100 AND 160"))
        for count in (1, 6):
            lines = [{"book_id": 100 + 7 * i + count, "quantity": 1} for i in range(count)]
            with count_queries(engine_of(app)) as sent:
                response = await client.post("/orders", json={"customer_id": 5, "lines": lines})
            assert response.status_code == 201, response.text
            assert sent.count <= 4 + count, f"an order of {count} lines sent {sent.count} statements"

    @pytest.mark.deep
    @pytest.mark.stub_keeps
    @pytest.mark.time_limit(30)
    async def test_concurrent_buyers_never_oversell(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """20 buyers at once for a book with 5 copies: exactly 5 orders succeed, 15 get 409."""
        with engine_of(app).begin() as connection:
            connection.execute(text("UPDATE stock SET quantity = 5 WHERE book_id = 60"))
        statuses: list[int] = []

        async def buy(customer: int) -> None:
            body = {"customer_id": customer, "lines": [{"book_id": 60, "quantity": 1}]}
            statuses.append((await client.post("/orders", json=body)).status_code)

        async with anyio.create_task_group() as group:
            for customer in range(1, 21):
                group.start_soon(buy, customer)
        assert sorted(statuses) == [201] * 5 + [409] * 15, f"statuses: {sorted(statuses)}"
        assert reference_stock_sold(engine_of(app), 60)[0] == 0


# ------------------------------------------------------------------- Task 5: under load
def _hold_book_row(name: str, book_id: int, release: threading.Event, held: threading.Event) -> None:
    """Lock the stock row (PostgreSQL) or the database for writers (SQLite) until released."""
    engine = db.make_engine(name)
    try:
        with engine.connect() as connection:
            if db.backend() == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(
                    text("SELECT quantity FROM stock WHERE book_id = :b FOR UPDATE"), {"b": book_id}
                )
            held.set()
            release.wait(20)
            connection.rollback()
    finally:
        engine.dispose()


def _wait_until_an_update_waits(name: str) -> None:
    """Return once the order is waiting for the lock inside the database."""
    if db.backend() == "sqlite":
        time.sleep(1.0)  # SQLite cannot show its waiters; a second is ample
        return
    engine = db.make_engine(name)
    try:
        deadline = time.monotonic() + 10
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                waiting = connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query ILIKE 'UPDATE stock%'"
                    )
                )
                connection.rollback()
                if waiting:
                    return
                time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the order never reached the locked stock row")


class TestUnderLoad:
    """Task 5: Served by uvicorn: concurrent, and many times faster under load."""

    async def test_a_shoppers_journey_stays_within_budget(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """The load test's journey (10 pages, 4 searches, 5 books, 1 order) sends at most 48 statements."""
        rng = random.Random(10)
        with engine_of(app).begin() as connection:
            connection.execute(text("UPDATE stock SET quantity = 50 WHERE book_id = 1500"))
        with count_queries(engine_of(app)) as sent:
            for _ in range(10):
                await client.get("/books", params={"after": 20 * rng.randrange(3)})
            for word in ("garden", "night", "garden", "stone"):
                await client.get("/search", params={"q": word})
            for _ in range(5):
                await client.get(f"/books/{rng.randint(1, 2000)}")
            body = {"customer_id": 9, "lines": [{"book_id": 1500, "quantity": 1}]}
            assert (await client.post("/orders", json=body)).status_code == 201
        assert sent.count <= 48, f"the journey sent {sent.count} statements (budget 48)"

    @pytest.mark.deep
    @pytest.mark.time_limit(40)
    def test_a_waiting_request_does_not_hold_up_the_others(self) -> None:
        """While one order waits for a database lock, a book page still answers within 2 s."""
        with start_app(TARGET, database="ex10w") as server:
            httpx.get(server.url + "/books/70", timeout=10)
            stocked = db.make_engine("ex10w")
            with stocked.begin() as connection:  # a sold-out row would not be waited for
                connection.execute(text("UPDATE stock SET quantity = 5 WHERE book_id = 70"))
            stocked.dispose()
            release, held = threading.Event(), threading.Event()
            holder = threading.Thread(target=_hold_book_row, args=("ex10w", 70, release, held))
            holder.start()
            try:
                assert held.wait(10)
                body = {"customer_id": 1, "lines": [{"book_id": 70, "quantity": 1}]}
                order = threading.Thread(
                    target=httpx.post, args=(server.url + "/orders",), kwargs={"json": body, "timeout": 30}
                )
                order.start()
                _wait_until_an_update_waits("ex10w")
                try:
                    answered = httpx.get(server.url + "/books/71", timeout=2.0).status_code
                except httpx.TimeoutException:
                    answered = None
                assert answered == 200, "a book page waited for another request's database lock"
            finally:
                release.set()
                holder.join()
            order.join(30)

    @pytest.mark.deep
    @pytest.mark.time_limit(60)
    def test_many_times_the_naive_throughput_without_failures(self) -> None:
        """A short locust run, side by side: at least 5x the naive app's requests/s, 0 failures."""
        from coursekit.loadtest import run_locust

        with start_app(BASELINE, database="ex10n") as naive, start_app(TARGET, database="ex10l") as yours:
            result = run_locust({"naive": naive.url, "yours": yours.url}, users=8, seconds=5)
        ratio = result.rps("yours") / max(result.rps("naive"), 0.1)
        assert result.summary["yours"]["failures"] == 0, (
            f"your app failed requests under load:\n{result.table()}"
        )
        assert ratio >= SPEEDUP, (
            f"your app served {ratio:.1f}x the naive requests/s (need {SPEEDUP:g}x):\n{result.table()}"
        )

    @pytest.mark.deep
    @pytest.mark.stub_keeps
    @pytest.mark.time_limit(30)
    def test_nothing_is_left_running(self) -> None:
        """A failing cell stops its server, and a killed kernel's server exits within 3 s."""
        try:
            with start_app(TARGET, database="ex10k") as server:
                raise RuntimeError("a cell fails")
        except RuntimeError:
            pass
        assert not server.running()
        assert port_is_free(server.port)
        kernel = textwrap.dedent(f"""
            import json, os, signal
            from coursekit.servers import start_app
            server = start_app({TARGET!r}, database="ex10k")
            print(json.dumps([server.port, server.pid]), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # a kernel killed: no atexit, no finally
        """)
        env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", kernel], capture_output=True, text=True, env=env, timeout=30
        )
        assert done.returncode == -signal.SIGKILL, done.stderr[-500:]
        port, pid = json.loads(done.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not (port_is_free(port) and not _alive(pid)):
            time.sleep(0.1)
        assert port_is_free(port), f"the server of a killed kernel still listens on port {port}"
        assert not _alive(pid), "the server of a killed kernel is still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
