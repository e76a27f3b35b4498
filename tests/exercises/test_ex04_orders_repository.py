"""ex04 · an orders repository that never oversells, plus one migration.

Every test runs on SQLite by default and on PostgreSQL when COURSE_DATABASE_URL
is set. The race tests start many buyers at the same instant, each with its own
session (as threads of this process, and as separate processes with their own
engines), and add a few milliseconds of latency to every SQL statement (like a
network hop to a database server), so that a read-check-write race shows up on
every run instead of once in a while.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from coursekit import db, paths
from coursekit.impl import load
from coursekit.querycount import count_queries

ex = load("ex04_orders_repository")

pytestmark = pytest.mark.db

LATENCY_S = 0.005  # added before every statement during a race
BUYERS = 20
COPIES = 5
ORDERS_DB = "ex04"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _skip_disk_flush(dbapi_connection: Any, _record: Any) -> None:
    # A scratch database needs no crash safety: without waiting for the disk at
    # every commit, the tests run several times faster. Locking is unchanged.
    cursor = dbapi_connection.cursor()
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor.execute("PRAGMA synchronous=OFF")
    else:
        cursor.execute("SET synchronous_commit TO off")
        dbapi_connection.commit()
    cursor.close()


def scratch_engine(name: str, **kwargs: Any) -> Engine:
    """A new, empty database for one test (a SQLite file, or a PostgreSQL schema)."""
    engine = db.fresh_engine(name, **kwargs)
    event.listen(engine, "connect", _skip_disk_flush)
    return engine


def price_of(book_id: int) -> Decimal:
    return Decimal(f"{10 + book_id}.50")


def seed(engine: Engine, stock: Mapping[int, int | None]) -> None:
    """Books with the given ids (price 10+id .50) and their stock (None: no stock row)."""
    with Session(engine) as session, session.begin():
        for book_id in stock:
            session.add(
                ex.Book(
                    id=book_id,
                    isbn=f"978{book_id:010d}",
                    title=f"Book {book_id}",
                    price=price_of(book_id),
                )
            )
        session.flush()
        session.add_all(
            ex.Stock(book_id=book_id, quantity=quantity)
            for book_id, quantity in stock.items()
            if quantity is not None
        )


def stock_levels(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        return dict(session.execute(select(ex.Stock.book_id, ex.Stock.quantity)).all())


def ordered_totals(engine: Engine) -> dict[int, int]:
    """Copies per book over all stored order lines."""
    with Session(engine) as session:
        rows = session.execute(
            select(ex.OrderLine.book_id, func.sum(ex.OrderLine.quantity)).group_by(
                ex.OrderLine.book_id
            )
        ).all()
        return {book_id: int(total) for book_id, total in rows}


def row_count(engine: Engine, model: type[Any]) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@contextmanager
def added_latency(engine: Engine, seconds: float = LATENCY_S) -> Iterator[None]:
    """Sleep before every statement: widens every gap between a read and a write."""

    def pause(*_args: Any) -> None:
        time.sleep(seconds)

    event.listen(engine, "before_cursor_execute", pause)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", pause)


@dataclass
class RaceOutcome:
    placed: list[tuple[dict[int, int], Any]] = field(default_factory=list)
    refused: list[tuple[dict[int, int], Any]] = field(default_factory=list)
    errors: list[tuple[dict[int, int], str]] = field(default_factory=list)

    def check_no_errors(self) -> None:
        if self.errors:
            lines, error = self.errors[0]
            raise AssertionError(
                f"{len(self.errors)} buyer(s) got an unexpected error, e.g. for {lines}: {error}"
            )


def race(place: Callable[[int, dict[int, int]], Any], orders: list[dict[int, int]]) -> RaceOutcome:
    """Start one thread per order, release them all at once, collect what happened."""
    outcome = RaceOutcome()
    start = threading.Barrier(len(orders), timeout=60)
    record = threading.Lock()

    def buyer(customer_id: int, lines: dict[int, int]) -> None:
        start.wait()
        try:
            result = place(customer_id, lines)
        except ex.OutOfStock as refusal:
            with record:
                outcome.refused.append((lines, refusal))
        except Exception as error:
            with record:
                outcome.errors.append((lines, f"{type(error).__name__}: {error}"))
        else:
            with record:
                outcome.placed.append((lines, result))

    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        futures = [pool.submit(buyer, 1000 + i, lines) for i, lines in enumerate(orders)]
        for future in futures:
            future.result(timeout=120)
    return outcome


# A few buyers in their own process, with its own engine and connection pool:
# what another web-server worker is. The process says it is ready, waits for the
# start signal, lets its buyers (threads) place their orders at once and prints
# what happened to each, one line of JSON per buyer.
BUYER_SCRIPT = """
import json, sys, threading, time
from pathlib import Path
from sqlalchemy import event
from coursekit import db
from coursekit.impl import load

name, first_customer, orders, latency, ready, start = sys.argv[1:]
ex = load("ex04_orders_repository")
orders = [{int(book): n for book, n in lines.items()} for lines in json.loads(orders)]
engine = db.make_engine(name, pool_size=len(orders), max_overflow=0)
connections = [engine.connect() for _ in orders]  # connected before the start,
for connection in connections:                      # like a warmed-up server
    connection.close()


@event.listens_for(engine, "before_cursor_execute")
def pause(*_args):
    time.sleep(float(latency))


repository = ex.OrderRepository(db.session_factory(engine))
together = threading.Barrier(len(orders))
reports = []


def buyer(customer_id, lines):
    together.wait()
    try:
        placed = repository.place_order(customer_id, lines)
    except ex.OutOfStock as refusal:
        reports.append({"refused": refusal.available})
    except Exception as error:
        reports.append({"error": f"{type(error).__name__}: {error}"})
    else:
        reports.append({"placed": [[line.book_id, line.quantity] for line in placed.lines]})


buyers = [
    threading.Thread(target=buyer, args=(int(first_customer) + i, lines))
    for i, lines in enumerate(orders)
]
Path(ready).touch()
deadline = time.monotonic() + 60
while not Path(start).exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.001)
for thread in buyers:
    thread.start()
for thread in buyers:
    thread.join()
engine.dispose()
print("\\n".join(json.dumps(report) for report in reports))
"""


def race_processes(orders: list[list[dict[int, int]]], scratch: Path) -> RaceOutcome:
    """One process per list of orders (one thread per order), all released at once."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.ROOT), env.get("PYTHONPATH")]))
    start = scratch / "start"
    workers: list[tuple[Path, subprocess.Popen[str]]] = []
    try:
        for i, batch in enumerate(orders):
            ready = scratch / f"ready-{i}"
            args = [str(2000 + 100 * i), json.dumps(batch), str(LATENCY_S), str(ready), str(start)]
            process = subprocess.Popen(
                [sys.executable, "-c", BUYER_SCRIPT, ORDERS_DB, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            workers.append((ready, process))
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in workers):
            for ready, process in workers:
                if not ready.exists() and process.poll() is not None:
                    _, err = process.communicate()
                    raise AssertionError(f"a buyer process failed to start: {err[-1000:]}")
            assert time.monotonic() < deadline, "buyer processes were not ready within 60 s"
            time.sleep(0.01)
        start.touch()
        outcome = RaceOutcome()
        for (_, process), batch in zip(workers, orders, strict=True):
            out, err = process.communicate(timeout=60)
            reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            if process.returncode != 0 or len(reports) != len(batch):
                raise AssertionError(f"a buyer process failed: {err[-1000:]}")
            # Threads finish in any order; the test only counts outcomes.
            for report in reports:
                if "placed" in report:
                    lines = {book: quantity for book, quantity in report["placed"]}
                    outcome.placed.append((lines, report["placed"]))
                elif "refused" in report:
                    outcome.refused.append(({}, report["refused"]))
                else:
                    outcome.errors.append(({}, str(report["error"])))
        return outcome
    finally:
        for _, process in workers:
            if process.poll() is None:
                process.kill()
            process.communicate()


class NaiveRepository:
    """The classic bug: read the stock, check it, (validate, pay, ...), write stock - n."""

    def __init__(self, session_factory: sessionmaker[Session], pause_s: float = 0.05) -> None:
        self._session_factory = session_factory
        self._pause_s = pause_s

    def place_order(self, customer_id: int, lines: dict[int, int]) -> int:
        with self._session_factory() as session:
            levels = {book_id: session.get_one(ex.Stock, book_id).quantity for book_id in lines}
        for book_id, quantity in lines.items():
            if levels[book_id] < quantity:
                raise ex.OutOfStock(book_id, quantity, levels[book_id])
        time.sleep(self._pause_s)  # the window: every other buyer reads the same levels
        with self._session_factory.begin() as session:
            for book_id, quantity in sorted(lines.items()):
                session.execute(
                    update(ex.Stock)
                    .where(ex.Stock.book_id == book_id)
                    .values(quantity=levels[book_id] - quantity)
                )
            order = ex.Order(
                customer_id=customer_id,
                lines=[
                    ex.OrderLine(book_id=b, quantity=q, unit_price=price_of(b))
                    for b, q in sorted(lines.items())
                ],
            )
            session.add(order)
            session.flush()
            return int(order.id)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orders_database() -> Iterator[Engine]:
    """The tables, created once for this module's tests (see ``engine``)."""
    # One pooled connection per racing buyer, so every buyer really has its own.
    engine = scratch_engine(ORDERS_DB, pool_size=BUYERS + 10, max_overflow=0)
    ex.Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(orders_database: Engine) -> Engine:
    """The orders database, emptied for this test."""
    with orders_database.begin() as connection:
        for table in reversed(ex.Base.metadata.sorted_tables):
            connection.execute(table.delete())
    return orders_database


def repository(engine: Engine) -> Any:
    return ex.OrderRepository(db.session_factory(engine))


# ---------------------------------------------------------------------------
# Task 1
# ---------------------------------------------------------------------------


class TestPlaceOrder:
    """Task 1: place_order stores one order atomically, or nothing at all."""

    def test_places_an_order_with_several_lines(self, engine: Engine) -> None:
        """An order for two books is stored with its lines, prices and status; stock drops."""
        seed(engine, {1: 5, 2: 3})
        placed = repository(engine).place_order(42, {2: 1, 1: 2})
        assert isinstance(placed, ex.PlacedOrder)
        assert placed.customer_id == 42
        assert placed.status == "placed"
        assert placed.lines == (
            ex.PlacedLine(book_id=1, quantity=2, unit_price=price_of(1)),
            ex.PlacedLine(book_id=2, quantity=1, unit_price=price_of(2)),
        )
        assert placed.total == 2 * price_of(1) + price_of(2)
        assert stock_levels(engine) == {1: 3, 2: 2}
        assert row_count(engine, ex.Order) == 1
        assert ordered_totals(engine) == {1: 2, 2: 1}

    def test_each_order_gets_its_own_id(self, engine: Engine) -> None:
        """Two orders get two different ids and take stock twice."""
        seed(engine, {1: 5})
        repo = repository(engine)
        first = repo.place_order(1, {1: 1})
        second = repo.place_order(2, {1: 1})
        assert first.id != second.id
        assert stock_levels(engine) == {1: 3}
        assert row_count(engine, ex.Order) == 2

    def test_the_last_copies_can_be_sold(self, engine: Engine) -> None:
        """Ordering exactly the copies in stock succeeds and leaves 0 (>=, not >)."""
        seed(engine, {1: 3})
        repository(engine).place_order(7, {1: 3})
        assert stock_levels(engine) == {1: 0}

    def test_out_of_stock_is_refused_with_details(self, engine: Engine) -> None:
        """Asking for 2 when 1 is left raises OutOfStock(book_id=1, requested=2, available=1)."""
        seed(engine, {1: 1})
        with pytest.raises(ex.OutOfStock) as refused:
            repository(engine).place_order(7, {1: 2})
        assert (refused.value.book_id, refused.value.requested, refused.value.available) == (
            1,
            2,
            1,
        )
        assert stock_levels(engine) == {1: 1}
        assert row_count(engine, ex.Order) == 0

    def test_a_book_without_stock_is_out_of_stock_not_unknown(self, engine: Engine) -> None:
        """A book that exists but has no stock row raises OutOfStock with 0 available."""
        seed(engine, {1: 5, 2: None})
        with pytest.raises(ex.OutOfStock) as refused:
            repository(engine).place_order(7, {1: 1, 2: 1})
        assert (refused.value.book_id, refused.value.available) == (2, 0)
        assert stock_levels(engine) == {1: 5}
        assert row_count(engine, ex.Order) == 0

    def test_all_or_nothing_when_one_line_lacks_stock(self, engine: Engine) -> None:
        """If one line of three lacks stock, no stock changes and no order or line is stored."""
        seed(engine, {1: 5, 2: 0, 3: 5})
        with pytest.raises(ex.OutOfStock) as refused:
            repository(engine).place_order(7, {3: 1, 1: 2, 2: 1})
        assert refused.value.book_id == 2
        assert stock_levels(engine) == {1: 5, 2: 0, 3: 5}
        assert row_count(engine, ex.Order) == 0
        assert row_count(engine, ex.OrderLine) == 0

    def test_unknown_book_is_refused(self, engine: Engine) -> None:
        """An order naming a book that does not exist raises UnknownBook and changes nothing."""
        seed(engine, {1: 5})
        with pytest.raises(ex.UnknownBook) as refused:
            repository(engine).place_order(7, {1: 1, 999: 1})
        assert refused.value.book_id == 999
        assert stock_levels(engine) == {1: 5}
        assert row_count(engine, ex.Order) == 0

    @pytest.mark.parametrize(
        "lines",
        [{}, {1: 0}, {1: -2}, {1: 1, 2: 0}],
        ids=["empty", "zero", "negative", "one-line-zero"],
    )
    def test_invalid_quantities_are_refused(self, engine: Engine, lines: dict[int, int]) -> None:
        """An empty order or a quantity below 1 raises ValueError (a -2 must not ADD stock)."""
        seed(engine, {1: 5, 2: 5})
        with pytest.raises(ValueError, match=r"."):
            repository(engine).place_order(7, lines)
        assert stock_levels(engine) == {1: 5, 2: 5}
        assert row_count(engine, ex.Order) == 0


# ---------------------------------------------------------------------------
# Task 2
# ---------------------------------------------------------------------------


class TestNeverOversells:
    """Task 2: concurrent buyers never get more copies than there are."""

    @pytest.mark.time_limit(15)  # a race waits on locks: give a busy machine room
    def test_eight_buyers_two_copies(self, engine: Engine) -> None:
        """8 buyers (threads) race for 2 copies: exactly 2 orders, 6 OutOfStock, stock 0."""
        seed(engine, {1: 2})
        with added_latency(engine):
            outcome = race(repository(engine).place_order, [{1: 1}] * 8)
        outcome.check_no_errors()
        assert len(outcome.placed) == 2, f"{len(outcome.placed)} orders for 2 copies"
        assert len(outcome.refused) == 6
        assert stock_levels(engine) == {1: 0}
        assert ordered_totals(engine) == {1: 2}

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_twenty_buyers_five_copies(self, engine: Engine) -> None:
        """20 buyers (threads) race for 5 copies: exactly 5 orders, 15 OutOfStock, stock 0."""
        seed(engine, {1: COPIES})
        repo = repository(engine)
        with added_latency(engine):
            outcome = race(repo.place_order, [{1: 1}] * BUYERS)
        outcome.check_no_errors()
        assert len(outcome.placed) == COPIES, f"{len(outcome.placed)} orders for {COPIES} copies"
        assert len(outcome.refused) == BUYERS - COPIES
        assert stock_levels(engine) == {1: 0}
        assert row_count(engine, ex.Order) == COPIES
        assert ordered_totals(engine) == {1: COPIES}

    @pytest.mark.deep
    @pytest.mark.time_limit(90)
    def test_buyers_in_separate_processes(self, engine: Engine, tmp_path: Path) -> None:
        """3 processes, each with its own engine and 3 buyers, race for 4 copies: exactly 4 sell."""
        seed(engine, {1: 4})
        outcome = race_processes([[{1: 1}] * 3] * 3, tmp_path)
        outcome.check_no_errors()
        assert len(outcome.placed) == 4, f"{len(outcome.placed)} orders for 4 copies"
        assert len(outcome.refused) == 5
        assert stock_levels(engine) == {1: 0}
        assert ordered_totals(engine) == {1: 4}

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_the_race_that_breaks_a_naive_version_does_not_break_yours(
        self, engine: Engine
    ) -> None:
        """The same race sells exactly 5 with yours, and oversells a read-check-write version."""
        seed(engine, {1: COPIES})
        with added_latency(engine):
            outcome = race(repository(engine).place_order, [{1: 1}] * BUYERS)
        outcome.check_no_errors()
        assert len(outcome.placed) == COPIES
        assert stock_levels(engine) == {1: 0}

        # The control experiment: the harness does catch the classic bug.
        with Session(engine) as session, session.begin():
            session.execute(ex.OrderLine.__table__.delete())
            session.execute(ex.Order.__table__.delete())
            session.execute(update(ex.Stock).values(quantity=COPIES))
        naive = NaiveRepository(db.session_factory(engine))
        with added_latency(engine):
            naive_outcome = race(naive.place_order, [{1: 1}] * BUYERS)
        naive_outcome.check_no_errors()
        assert len(naive_outcome.placed) > COPIES  # oversold
        assert (
            ordered_totals(engine)[1] + stock_levels(engine)[1] > COPIES
        )  # lost updates

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_buyers_of_two_copies(self, engine: Engine) -> None:
        """12 buyers want 2 copies each of 5: exactly 2 orders, 1 copy left, never negative."""
        seed(engine, {1: 5})
        with added_latency(engine):
            outcome = race(repository(engine).place_order, [{1: 2}] * 12)
        outcome.check_no_errors()
        assert len(outcome.placed) == 2
        assert stock_levels(engine) == {1: 1}
        assert all(refusal.available <= 1 for _, refusal in outcome.refused)

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_multi_line_orders_conserve_stock(self, engine: Engine) -> None:
        """Racing multi-line orders: no deadlock, stock + ordered == initial, no needless refusal."""
        initial = {1: 6, 2: 4, 3: 5, 4: 3}
        seed(engine, initial)
        rng = random.Random(4)
        orders = []
        for _ in range(24):
            books = rng.sample(sorted(initial), k=rng.choice([2, 3]))  # random line order
            orders.append({book: rng.choice([1, 2]) for book in books})
        with added_latency(engine):
            outcome = race(repository(engine).place_order, orders)
        outcome.check_no_errors()  # a deadlock (PostgreSQL) would show up here

        final = stock_levels(engine)
        ordered = ordered_totals(engine)
        assert all(quantity >= 0 for quantity in final.values()), final
        for book, quantity in initial.items():
            assert final[book] + ordered.get(book, 0) == quantity, f"book {book} lost copies"
        assert row_count(engine, ex.Order) == len(outcome.placed) > 0
        for lines, placed in outcome.placed:
            assert {line.book_id: line.quantity for line in placed.lines} == lines
        # Stock only ever goes down, so a refusal was right only if the refused
        # line still cannot be served at the end.
        assert outcome.refused
        for lines, refusal in outcome.refused:
            assert refusal.book_id in lines
            assert final[refusal.book_id] < lines[refusal.book_id], (lines, final)


# ---------------------------------------------------------------------------
# Task 3
# ---------------------------------------------------------------------------

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def store_orders(
    engine: Engine, customer_id: int, count: int, placed_at: list[dt.datetime] | None = None
) -> list[int]:
    """Insert orders directly (not through place_order): each with two lines, book 2 first."""
    ids = []
    with Session(engine) as session, session.begin():
        for n in range(count):
            order = ex.Order(
                customer_id=customer_id,
                lines=[
                    ex.OrderLine(book_id=2, quantity=1, unit_price=price_of(2)),
                    ex.OrderLine(book_id=1, quantity=1 + n, unit_price=price_of(1)),
                ],
            )
            if placed_at is not None:
                order.placed_at = placed_at[n]
            session.add(order)
            session.flush()
            ids.append(order.id)
    return ids


def expected(order_id: int, customer_id: int, n: int) -> Any:
    return ex.PlacedOrder(
        id=order_id,
        customer_id=customer_id,
        status="placed",
        lines=(
            ex.PlacedLine(book_id=1, quantity=1 + n, unit_price=price_of(1)),
            ex.PlacedLine(book_id=2, quantity=1, unit_price=price_of(2)),
        ),
    )


class TestQueries:
    """Task 3: get_order and orders_for_customer return plain values with their lines."""

    def test_get_order_returns_the_order_with_lines(self, engine: Engine) -> None:
        """get_order(id) returns a PlacedOrder with every line at its stored price."""
        seed(engine, {1: 5, 2: 5})
        store_orders(engine, 9, 1)
        (order_id,) = store_orders(engine, 7, 1)
        with engine.begin() as connection:  # prices change; placed orders keep theirs
            connection.execute(update(ex.Book).values(price=Decimal("99.00")))
        assert repository(engine).get_order(order_id) == expected(order_id, 7, 0)

    def test_get_order_of_an_unknown_id_is_none(self, engine: Engine) -> None:
        """get_order returns None (no exception) for an id that does not exist."""
        seed(engine, {1: 5, 2: 5})
        store_orders(engine, 7, 1)
        assert repository(engine).get_order(12345) is None

    def test_orders_for_customer_lists_only_theirs_newest_first(self, engine: Engine) -> None:
        """orders_for_customer(7): only customer 7's orders, latest placed_at first, equal times higher id first."""
        seed(engine, {1: 5, 2: 5})
        days = [T0 + dt.timedelta(days=d) for d in range(5)]
        # Stored in an order that is neither the id order nor the time order: a
        # result that is right only by accident of storage fails here.
        first = store_orders(engine, 7, 3, placed_at=[days[0], days[4], days[2]])
        store_orders(engine, 8, 2, placed_at=[days[3], days[1]])
        tied = store_orders(engine, 7, 2, placed_at=[days[2], days[2]])
        found = repository(engine).orders_for_customer(7)
        assert [order.id for order in found] == [first[1], tied[1], tied[0], first[2], first[0]]
        assert found[0] == expected(first[1], 7, 1)
        assert found[-1] == expected(first[0], 7, 0)
        assert repository(engine).orders_for_customer(99) == []

    def test_orders_placed_one_after_another_come_newest_first(self, engine: Engine) -> None:
        """Three orders placed in quick succession are listed last-placed first."""
        seed(engine, {1: 5, 2: 5})
        repo = repository(engine)
        placed = [repo.place_order(7, {1: 1}), repo.place_order(7, {2: 1}), repo.place_order(7, {1: 1})]
        assert repo.orders_for_customer(7) == placed[::-1]

    def test_orders_for_customer_runs_a_constant_number_of_queries(self, engine: Engine) -> None:
        """Loading 1 or 12 orders with their lines takes the same, small number of queries."""
        seed(engine, {1: 50, 2: 50})
        store_orders(engine, 7, 1)
        store_orders(engine, 8, 12)
        repo = repository(engine)
        with count_queries(engine) as one:
            assert len(repo.orders_for_customer(7)) == 1
        with count_queries(engine) as twelve:
            assert len(repo.orders_for_customer(8)) == 12
        assert twelve.count == one.count <= 2, twelve.statements

    def test_place_order_result_is_what_get_order_returns(self, engine: Engine) -> None:
        """The value place_order returns equals what get_order reads back."""
        seed(engine, {1: 5, 2: 5})
        repo = repository(engine)
        placed = repo.place_order(7, {2: 1, 1: 2})
        assert repo.get_order(placed.id) == placed


# ---------------------------------------------------------------------------
# Task 4
# ---------------------------------------------------------------------------

SEED_0001 = [
    "INSERT INTO books (id, isbn, title, price) VALUES "
    "(1, '9780000000001', 'Dune', 11.50), (2, '9780000000002', 'Emma', 12.50)",
    "INSERT INTO stock (book_id, quantity) VALUES (1, 5), (2, 7)",
    "INSERT INTO orders (id, customer_id) VALUES (1, 7), (2, 8), (3, 7)",
    "INSERT INTO order_lines (order_id, book_id, quantity, unit_price) VALUES "
    "(1, 1, 2, 11.50), (1, 2, 1, 12.50), (2, 2, 4, 12.50), (3, 1, 1, 11.50)",
]
# Spelled out here, independently of the models and of the migration under test.
KNOWN_STATUSES = ["placed", "paid", "shipped", "cancelled"]
UNKNOWN_STATUSES = ["lost", "canceled", "Placed", ""]


def data_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "books": "SELECT id, isbn, title, price FROM books ORDER BY id",
        "stock": "SELECT book_id, quantity FROM stock ORDER BY book_id",
        "orders": "SELECT id, customer_id, placed_at FROM orders ORDER BY id",
        "order_lines": "SELECT order_id, book_id, quantity, unit_price FROM order_lines "
        "ORDER BY order_id, book_id",
    }
    with engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(text(sql))]
            for name, sql in queries.items()
        }


def schema_snapshot(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    snapshot: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        snapshot[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
            ),
            "checks": sorted(c["name"] or "" for c in inspector.get_check_constraints(table)),
            "uniques": sorted(u["name"] or "" for u in inspector.get_unique_constraints(table)),
        }
    return snapshot


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def status_is_accepted(engine: Engine, status: str) -> bool:
    """Try to give order 2 this status; whatever happens, change nothing."""
    with engine.connect() as connection:
        try:
            connection.execute(text("UPDATE orders SET status = :s WHERE id = 2"), {"s": status})
        except IntegrityError:
            return False
        finally:
            connection.rollback()
    return True


def migrated_to_0001(name: str) -> Engine:
    """A scratch database at revision 0001, holding a few rows in every table."""
    engine = scratch_engine(name)
    command.upgrade(ex.alembic_config(engine), "0001")
    with engine.begin() as connection:
        for statement in SEED_0001:
            connection.execute(text(statement))
    return engine


Upgraded = tuple[Engine, dict[str, list[tuple[Any, ...]]]]


@pytest.fixture(scope="module")
def upgraded() -> Iterator[Upgraded]:
    """A database upgraded once from 0001 (with rows) to head, and its rows before that."""
    engine = migrated_to_0001("ex04_upgraded")
    try:
        before = data_snapshot(engine)
        command.upgrade(ex.alembic_config(engine), "head")
        yield engine, before
    finally:
        engine.dispose()


@pytest.fixture
def at_0001() -> Iterator[Engine]:
    engine = migrated_to_0001("ex04_migration")
    yield engine
    engine.dispose()


class TestMigration:
    """Task 4: migration 0002 adds orders.status, its CHECK and an index; downgrade undoes it."""

    def test_upgrade_adds_status_and_keeps_every_row(self, upgraded: Upgraded) -> None:
        """After upgrade: orders.status is NOT NULL, old orders are 'placed', no row is lost."""
        engine, before = upgraded
        assert revision(engine) == "0002"
        columns = {c["name"]: c for c in inspect(engine).get_columns("orders")}
        assert "status" in columns
        assert columns["status"]["nullable"] is False
        assert data_snapshot(engine) == before
        with engine.connect() as connection:
            statuses = connection.execute(text("SELECT status FROM orders")).scalars().all()
        assert statuses == ["placed"] * 3

    def test_upgrade_adds_the_check_constraint(self, upgraded: Upgraded) -> None:
        """After upgrade: ck_orders_status_known accepts exactly the four known statuses."""
        engine, _ = upgraded
        checks = {c["name"] for c in inspect(engine).get_check_constraints("orders")}
        assert "ck_orders_status_known" in checks, checks
        accepted = {status: status_is_accepted(engine, status) for status in KNOWN_STATUSES}
        assert all(accepted.values()), f"refused a known status: {accepted}"
        refused = {status: not status_is_accepted(engine, status) for status in UNKNOWN_STATUSES}
        assert all(refused.values()), f"accepted an unknown status: {refused}"

    def test_upgrade_adds_the_customer_index(self, upgraded: Upgraded) -> None:
        """After upgrade: the index ix_orders_customer_id covers orders.customer_id."""
        engine, _ = upgraded
        indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("orders")}
        assert indexes.get("ix_orders_customer_id") == ["customer_id"], indexes

    @pytest.mark.deep
    @pytest.mark.time_limit(15)
    def test_head_matches_the_models(self, upgraded: Upgraded) -> None:
        """After upgrade, Alembic's autogenerate finds no difference from the ORM models."""
        engine, _ = upgraded
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), ex.Base.metadata)
        assert differences == []

    @pytest.mark.deep
    @pytest.mark.time_limit(30)
    def test_downgrade_restores_revision_0001_exactly(self, at_0001: Engine) -> None:
        """Downgrade gives back the 0001 schema (no column, CHECK or index left) and every row."""
        schema_before = schema_snapshot(at_0001)
        data_before = data_snapshot(at_0001)
        config = ex.alembic_config(at_0001)
        command.upgrade(config, "head")
        command.downgrade(config, "0001")
        assert revision(at_0001) == "0001"
        assert schema_snapshot(at_0001) == schema_before
        assert data_snapshot(at_0001) == data_before
        # ...and the way up still works after the way down.
        command.upgrade(config, "head")
        assert revision(at_0001) == "0002"
        assert data_snapshot(at_0001) == data_before
