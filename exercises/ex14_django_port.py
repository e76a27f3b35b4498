"""Port the bookstore's catalog and order endpoints to Django

The bookstore's API runs on FastAPI (``coursekit/frameworks/fastapi_app.py``, the
reference) and on Flask (``coursekit/frameworks/flask_app.py``). Port its two
endpoints to plain Django views returning ``JsonResponse``, so that the same
contract tests pass on all three. This docstring is the contract:
``tests/exercises/test_ex14_django_port.py`` checks it, one test class per task.
``check("ex14")`` shows which tasks pass; ``hint("ex14")`` helps with the first
open one.

Given: Django is configured at the top of this module
(``coursekit.frameworks.django_setup.configure_django``, on the course database
``ex14``: SQLite, or PostgreSQL with ``COURSE_DATABASE_URL``), with no middleware (no CSRF,
no sessions: an API), ``DEBUG = False`` and ``USE_TZ = False`` (naive UTC
datetimes). The Django models of the bookstore tables are in
``coursekit/frameworks/django_bookstore/models.py`` (``managed = False``: the
tables belong to the course's loader). ``problem(status, title, detail)`` builds
an RFC 9457 problem response. The routes (``urlpatterns``, below) are given; the
tests serve them through Django's WSGI handler in-process, and race buyers in
threads, each thread with its own database connection.

Every error is a problem: ``Content-Type: application/problem+json``, a JSON
object with ``type``, ``title``, ``status`` (the HTTP status) and ``detail`` (a
sentence for a human). Never a 500, never Django's HTML error page.

Task 1 · ``GET /books?page=&size=``: the catalog
    ``{"page": p, "size": s, "items": [...]}``: the books of page ``p`` (from 1,
    default 1) of ``s`` books (1 to MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE), in
    ascending id order. Each item is ``{"id", "title", "price", "author": {"id",
    "name"}, "review_count"}``; ``price`` is a string with two decimals
    (``"12.50"``: money is never a float); ``review_count`` is 0 for a book
    without reviews. A page after the last one has no items (200). A ``page``
    below 1, a ``size`` outside 1..MAX_PAGE_SIZE, or either not an integer, is a
    422 problem. Rows of a query without ORDER BY come back in an order of the
    database's choosing, which differs between SQLite and PostgreSQL.

Task 2 · A query budget independent of the page size
    A catalog page sends at most 3 SQL statements, and the same number for 1, 10
    or 50 books. Django runs a query whenever code touches a relation that was
    not loaded with the objects (``book.author``, ``book.reviews``).

Task 3 · ``POST /orders``: placing an order
    Body ``{"customer_id": int, "book_id": int, "quantity": int}``. Answers 201
    with ``{"id", "customer_id", "book_id", "quantity", "unit_price", "status":
    "paid"}`` (``unit_price``: the book's price now, a string like ``price``),
    having stored one ``Order`` (``placed_at`` now, in UTC) with one
    ``OrderLine`` and taken the copies from the book's ``Stock``, all in one
    transaction. Refusals change nothing, and are problems: 422 for a body that
    is not JSON, not an object, lacks a field, has a non-integer field or a
    quantity below 1; 404 for an unknown book or customer; 409 when the book has
    fewer copies than asked (a book without a stock row has none).

Task 4 · Never oversell
    However many buyers race for the last copies (threads of one server, each
    with its own connection),
    the copies sold never exceed the stock: with 5 copies and 20 buyers of one
    copy each, exactly 5 get 201 and 15 get 409, and the stock ends at 0, on
    SQLite and on PostgreSQL. The table's CHECK (``quantity >= 0``) refuses a
    negative stock with an IntegrityError. PostgreSQL runs concurrent
    transactions at once (READ COMMITTED); Django gives SQLite
    ``BEGIN IMMEDIATE`` here, which runs them one at a time, so a mistake that
    is harmless on SQLite can oversell on PostgreSQL. ``select_for_update()``
    raises outside a transaction on PostgreSQL and is silently ignored by SQLite.
"""

from __future__ import annotations

from typing import Final

from django.http import HttpRequest, HttpResponse
from django.urls import path

from coursekit.frameworks.django_setup import configure_django, problem  # noqa: F401  (yours to use)

configure_django("ex14")  # given: before any model is imported

from coursekit.frameworks.django_bookstore.models import (  # noqa: E402, F401  (yours to use)
    Author,
    Book,
    Customer,
    Order,
    OrderLine,
    Review,
    Stock,
)

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "catalog", "place_order", "urlpatterns"]

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100


def catalog(request: HttpRequest) -> HttpResponse:
    """GET /books?page=&size=: one page of books in id order, each with author and review count."""
    raise NotImplementedError


def place_order(request: HttpRequest) -> HttpResponse:
    """POST /orders: take the copies and store the order atomically; never oversell."""
    raise NotImplementedError


# Given: the routes the tests call.
urlpatterns = [
    path("books", catalog),
    path("orders", place_order),
]
