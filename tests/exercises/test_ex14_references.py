"""The ex14 contract against the two given references: FastAPI and Flask.

The same checks as ``test_ex14_django_port.py`` (``coursekit/frameworks/contract.py``),
so the contract the learner ports to Django is proven on the two implementations it
comes from. FastAPI is served through httpx's ASGITransport, Flask through its
WSGITransport, both in-process; the two apps share one SQLAlchemy data layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from coursekit import db
from coursekit.frameworks import contract, fastapi_app, flask_app
from coursekit.frameworks.clients import asgi_client, wsgi_client
from coursekit.querycount import count_queries

pytestmark = pytest.mark.db

DATABASE = "ex14ref"
FRAMEWORKS = ("fastapi", "flask")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    sqlalchemy_engine = db.fresh_engine(DATABASE)
    try:
        contract.seed(sqlalchemy_engine)
        yield sqlalchemy_engine
    finally:
        sqlalchemy_engine.dispose()


@pytest.fixture(params=FRAMEWORKS)
def new_client(request: pytest.FixtureRequest, engine: Engine) -> Callable[[], httpx.Client]:
    if request.param == "fastapi":
        fastapi = fastapi_app.create_app(engine)
        return lambda: asgi_client(fastapi)
    flask = flask_app.create_app(engine)
    return lambda: wsgi_client(flask)


@pytest.fixture
def client(new_client: Callable[[], httpx.Client]) -> Iterator[httpx.Client]:
    with new_client() as http:
        yield http


@pytest.fixture
def stock(engine: Engine) -> Engine:
    contract.reset_stock(engine)
    return engine


def test_catalog_pages(client: httpx.Client) -> None:
    """First, later, last and past-the-end pages, as the contract states."""
    contract.check_first_page(client)
    contract.check_later_page(client)
    contract.check_last_and_past_the_end(client)


@pytest.mark.parametrize("params", contract.BAD_PAGES)
def test_bad_page_parameters(client: httpx.Client, params: dict[str, Any]) -> None:
    """Bad paging is a 422 problem."""
    contract.check_bad_page(client, params)


def test_catalog_is_one_statement_whatever_the_page_size(client: httpx.Client, engine: Engine) -> None:
    """joinedload plus a correlated count: one SELECT for 1 or 50 books."""
    for size in (1, 50):
        with count_queries(engine) as queries:
            contract.get_page(client, size=size)
        assert queries.count == 1, queries.statements


def test_orders(client: httpx.Client, stock: Engine) -> None:
    """A placed order, the last copies, and every refusal with its problem."""
    contract.check_places_order(client, stock)
    contract.check_last_copies_sell(client, stock)
    for body in contract.OUT_OF_STOCK_BODIES:
        contract.check_refused(client, stock, body, 409)
    for body in contract.UNKNOWN_BODIES:
        contract.check_refused(client, stock, body, 404)
    for invalid in contract.INVALID_BODIES:
        contract.check_refused(client, stock, invalid, 422)
    contract.check_not_json(client, stock)


@pytest.mark.time_limit(30)
def test_twenty_buyers_five_copies(new_client: Callable[[], httpx.Client], stock: Engine) -> None:
    """20 buyers race for 5 copies: exactly 5 orders."""

    def pause(*_args: Any) -> None:
        time.sleep(0.005)

    event.listen(stock, "before_cursor_execute", pause)
    try:
        outcome = contract.race(new_client, buyers=20)
    finally:
        event.remove(stock, "before_cursor_execute", pause)
    contract.check_race(outcome, stock, buyers=20, copies=5)
