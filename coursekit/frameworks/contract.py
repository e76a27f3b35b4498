"""The HTTP contract of the bookstore service, checked the same way on every framework.

``GET /books?page=&size=``: a page of books in id order, each with its author and
review count; ``size`` 1-100 (default 20), ``page`` from 1. ``POST /orders``
``{"customer_id", "book_id", "quantity"}``: 201 with the order, never more copies
than in stock. Every error is an RFC 9457 problem (``application/problem+json``):
422 for bad input, 404 for an unknown book or customer, 409 when stock is short.

Each ``check_*`` function sends requests through an ``httpx.Client`` (any app:
FastAPI, Django or Flask, in-process) and asserts what a client may rely on.
They run on :func:`seed`'s small bookstore, shaped to catch the classic
mistakes: author ids run the other way from book ids (a book given the wrong
author shows), every fourth book has no review (an inner join drops it), one
book is sold out and one has no stock row at all.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import httpx
from sqlalchemy import Engine, delete, func, insert, select

from coursekit.bookstore import Base, Order, OrderLine, Stock

N_BOOKS: Final = 60
CUSTOMERS: Final = (1, 2, 3, 4)
SOLD_OUT_BOOK: Final = 52
NO_STOCK_ROW_BOOK: Final = 53
RACE_BOOK: Final = 51
MISSING_BOOK: Final = 9_999
MISSING_CUSTOMER: Final = 9_999
PLENTY: Final = 100
_DAY = dt.datetime(2025, 3, 1, 12, 0)


def author_of(book_id: int) -> int:
    return N_BOOKS + 1 - book_id  # ids run the other way


def price_of(book_id: int) -> Decimal:
    return Decimal("10.00") + Decimal(book_id % 7) + Decimal("0.50")


def reviews_of(book_id: int) -> int:
    return book_id % 4  # 0 for every fourth book


def seed(engine: Engine) -> None:
    """Create the bookstore tables and fill them with the contract's data."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    table = Base.metadata.tables
    with engine.begin() as connection:
        connection.execute(
            insert(table["authors"]),
            [{"id": i, "name": f"Author {i}", "country": "GB", "born": 1950} for i in range(1, N_BOOKS + 1)],
        )
        connection.execute(
            insert(table["books"]),
            [
                {
                    "id": i,
                    "isbn": f"978000000{i:04d}",
                    "title": f"Book {i}",
                    "author_id": author_of(i),
                    "genre": "fiction",
                    "language": "en",
                    "published_year": 2000,
                    "pages": 100,
                    "price": price_of(i),
                }
                for i in range(1, N_BOOKS + 1)
            ],
        )
        connection.execute(
            insert(table["customers"]),
            [
                {"id": c, "email": f"c{c}@x.test", "name": f"C{c}", "country": "GB", "joined_on": _DAY.date()}
                for c in CUSTOMERS
            ],
        )
        connection.execute(
            insert(table["reviews"]),
            [
                {"book_id": b, "customer_id": c, "rating": 3, "title": f"R{b}-{c}", "created_at": _DAY}
                for b in range(1, N_BOOKS + 1)
                for c in CUSTOMERS[: reviews_of(b)]
            ],
        )
    reset_stock(engine)


def reset_stock(engine: Engine, race_copies: int = 5) -> None:
    """No orders, plenty of every book, except the sold-out, stockless and race books."""
    special = {SOLD_OUT_BOOK: 0, RACE_BOOK: race_copies}
    with engine.begin() as connection:
        connection.execute(delete(OrderLine))
        connection.execute(delete(Order))
        connection.execute(delete(Stock))
        connection.execute(
            insert(Stock),
            [
                {"book_id": i, "quantity": special.get(i, PLENTY)}
                for i in range(1, N_BOOKS + 1)
                if i != NO_STOCK_ROW_BOOK
            ],
        )


def stock_of(engine: Engine, book_id: int) -> int | None:
    with engine.connect() as connection:
        return connection.scalar(select(Stock.quantity).where(Stock.book_id == book_id))


def copies_ordered(engine: Engine, book_id: int) -> int:
    with engine.connect() as connection:
        total = connection.scalar(select(func.sum(OrderLine.quantity)).where(OrderLine.book_id == book_id))
        return int(total or 0)


def order_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Order)) or 0


# ---- the catalog ----------------------------------------------------------------------


def expected_item(book_id: int) -> dict[str, Any]:
    return {
        "id": book_id,
        "title": f"Book {book_id}",
        "price": str(price_of(book_id)),
        "author": {"id": author_of(book_id), "name": f"Author {author_of(book_id)}"},
        "review_count": reviews_of(book_id),
    }


def get_page(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/books", params=params)
    status = response.status_code
    assert status == 200, f"GET /books {params} answered {status}: {response.text:.200}"
    body: dict[str, Any] = response.json()
    return body


def check_first_page(client: httpx.Client) -> None:
    body = get_page(client)
    assert (body["page"], body["size"]) == (1, 20), "the default page is page 1 of 20 books"
    assert body["items"] == [expected_item(i) for i in range(1, 21)], body["items"][:3]


def check_later_page(client: httpx.Client) -> None:
    body = get_page(client, page=3, size=7)
    ids = [item["id"] for item in body["items"]]
    assert ids == list(range(15, 22)), f"page=3&size=7 gave ids {ids}, expected 15..21 in id order"
    assert body["items"] == [expected_item(i) for i in ids]


def check_last_and_past_the_end(client: httpx.Client) -> None:
    last = get_page(client, page=3, size=25)["items"]
    assert [item["id"] for item in last] == list(range(51, N_BOOKS + 1))
    assert get_page(client, page=4, size=25)["items"] == []


def check_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with this status: media type, status, title and detail."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path} answered "
        f"{response.status_code}, expected {status}: {response.text[:200]}"
    )
    media_type = response.headers.get("content-type", "")
    assert media_type.startswith("application/problem+json"), f"content-type {media_type!r}"
    body: dict[str, Any] = response.json()
    assert body.get("status") == status, body
    for member in ("title", "detail"):
        assert isinstance(body.get(member), str), f"{member} should be a string: {body}"
        assert body[member], f"{member} should not be empty: {body}"
    return body


BAD_PAGES: Final[tuple[dict[str, Any], ...]] = (
    {"size": 0},
    {"size": 101},
    {"size": 1000},
    {"size": "many"},
    {"page": 0},
    {"page": -1},
    {"page": "first"},
)


def check_bad_page(client: httpx.Client, params: dict[str, Any]) -> None:
    check_problem(client.get("/books", params=params), 422)


# ---- orders ---------------------------------------------------------------------------


def post_order(client: httpx.Client, book_id: int, quantity: int = 1, customer_id: int = 1) -> httpx.Response:
    return client.post("/orders", json={"customer_id": customer_id, "book_id": book_id, "quantity": quantity})


def check_places_order(client: httpx.Client, engine: Engine) -> None:
    before = stock_of(engine, 7)
    response = post_order(client, 7, quantity=3, customer_id=2)
    assert response.status_code == 201, f"answered {response.status_code}: {response.text[:200]}"
    body = response.json()
    assert isinstance(body.get("id"), int), body
    assert {k: v for k, v in body.items() if k != "id"} == {
        "customer_id": 2,
        "book_id": 7,
        "quantity": 3,
        "unit_price": str(price_of(7)),
        "status": "paid",
    }
    assert stock_of(engine, 7) == (before or 0) - 3
    with engine.connect() as connection:
        lines = connection.execute(
            select(OrderLine.book_id, OrderLine.quantity, OrderLine.unit_price).where(
                OrderLine.order_id == body["id"]
            )
        ).all()
        customer = connection.scalar(select(Order.customer_id).where(Order.id == body["id"]))
    assert [tuple(line) for line in lines] == [(7, 3, price_of(7))], lines
    assert customer == 2


def check_last_copies_sell(client: httpx.Client, engine: Engine) -> None:
    assert post_order(client, RACE_BOOK, quantity=5).status_code == 201
    assert stock_of(engine, RACE_BOOK) == 0


def check_refused(client: httpx.Client, engine: Engine, body: Any, status: int) -> None:
    """The request is refused with a problem of ``status``, and nothing changes."""
    stock_before, orders_before = stock_of(engine, 7), order_count(engine)
    check_problem(client.post("/orders", json=body), status)
    assert stock_of(engine, 7) == stock_before, "stock changed although the order was refused"
    assert order_count(engine) == orders_before, "an order was stored although it was refused"


OUT_OF_STOCK_BODIES: Final = (
    {"customer_id": 1, "book_id": 7, "quantity": PLENTY + 1},
    {"customer_id": 1, "book_id": SOLD_OUT_BOOK, "quantity": 1},
    {"customer_id": 1, "book_id": NO_STOCK_ROW_BOOK, "quantity": 1},
)
UNKNOWN_BODIES: Final = (
    {"customer_id": 1, "book_id": MISSING_BOOK, "quantity": 1},
    {"customer_id": MISSING_CUSTOMER, "book_id": 7, "quantity": 1},
)
INVALID_BODIES: Final = (
    {"customer_id": 1, "book_id": 7, "quantity": 0},
    {"customer_id": 1, "book_id": 7, "quantity": -2},
    {"customer_id": 1, "book_id": 7},
    {"customer_id": 1, "book_id": "seven", "quantity": 1},
    {"book_id": 7, "quantity": 1},
    [7, 1],
    "not an object",
)


def check_not_json(client: httpx.Client, engine: Engine) -> None:
    orders_before = order_count(engine)
    response = client.post("/orders", content=b"{not json", headers={"content-type": "application/json"})
    check_problem(response, 422)
    assert order_count(engine) == orders_before


# ---- the race -------------------------------------------------------------------------


@dataclass
class RaceOutcome:
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, status: int) -> int:
        return self.statuses.count(status)


def race(
    new_client: Callable[[], httpx.Client],
    buyers: int,
    book_id: int = RACE_BOOK,
    quantity: int = 1,
    around_each: Callable[[Callable[[], None]], None] | None = None,
) -> RaceOutcome:
    """``buyers`` threads, each with its own client, released at once, each ordering ``quantity``.

    ``around_each`` wraps each buyer's request (a test adds latency to its database
    connection, say, or closes it afterwards).
    """
    outcome = RaceOutcome()
    start = threading.Barrier(buyers, timeout=60)
    record = threading.Lock()

    def buy(customer_id: int) -> None:
        with new_client() as client:
            start.wait()
            try:
                status = post_order(client, book_id, quantity, customer_id).status_code
            except Exception as error:  # a test reports it; a thread must not die silently
                with record:
                    outcome.errors.append(f"{type(error).__name__}: {error}")
            else:
                with record:
                    outcome.statuses.append(status)

    def buyer(customer_id: int) -> None:
        if around_each is None:
            buy(customer_id)
        else:
            around_each(lambda: buy(customer_id))

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        futures = [pool.submit(buyer, CUSTOMERS[i % len(CUSTOMERS)]) for i in range(buyers)]
        for future in futures:
            future.result(timeout=120)
    return outcome


def check_race(
    outcome: RaceOutcome, engine: Engine, buyers: int, copies: int, book_id: int = RACE_BOOK
) -> None:
    """Exactly ``copies`` orders succeed, every other buyer gets 409, stock ends at 0."""
    assert not outcome.errors, f"{len(outcome.errors)} buyer(s) failed: {outcome.errors[0]}"
    sold = outcome.count(201)
    assert sold == copies, f"{sold} orders for {copies} copies: statuses {sorted(outcome.statuses)}"
    assert outcome.count(409) == buyers - copies, f"statuses: {sorted(outcome.statuses)}"
    assert stock_of(engine, book_id) == 0
    assert copies_ordered(engine, book_id) == copies
