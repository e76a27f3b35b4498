"""Port the bookstore's catalog and order endpoints to Django

Reference solution. The contract is stated in ``exercises/ex14_django_port.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

from django import forms
from django.db import transaction
from django.db.models import Count, F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from coursekit.frameworks.django_setup import configure_django, problem

configure_django("ex14")  # given: before any model is imported

from coursekit.frameworks.django_bookstore.models import (  # noqa: E402
    Book,
    Customer,
    Order,
    OrderLine,
    Stock,
)

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "catalog", "place_order", "urlpatterns"]

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100


# ---------------------------------------------------------------------------
# Task 1 and 2: the catalog
# ---------------------------------------------------------------------------


class PageForm(forms.Form):  # type: ignore[misc]  # Django ships no type information
    """``?page=&size=``: Django's own validation layer (what Pydantic is to FastAPI)."""

    page = forms.IntegerField(min_value=1, required=False)
    size = forms.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


@require_GET  # type: ignore[untyped-decorator]  # Django ships no type information
def catalog(request: HttpRequest) -> HttpResponse:
    """GET /books?page=&size=: one page of books in id order, each with author and review count."""
    form = PageForm(request.GET)
    if not form.is_valid():
        return _invalid(form)
    page = form.cleaned_data["page"] or 1
    size = form.cleaned_data["size"] or DEFAULT_PAGE_SIZE
    start = (page - 1) * size
    books = (
        Book.objects.select_related("author")  # the author in the same SELECT (a JOIN)
        .annotate(review_count=Count("reviews"))  # counted by the database: GROUP BY + LEFT JOIN
        .order_by("id")  # a GROUP BY has no order of its own (PostgreSQL hashes)
    )[start : start + size]  # slicing a QuerySet is LIMIT/OFFSET, not Python slicing
    items = [
        {
            "id": book.id,
            "title": book.title,
            "price": book.price,  # Decimal: JsonResponse's encoder writes "12.50"
            "author": {"id": book.author.id, "name": book.author.name},
            "review_count": book.review_count,
        }
        for book in books
    ]
    return JsonResponse({"page": page, "size": size, "items": items})


# ---------------------------------------------------------------------------
# Task 3 and 4: placing an order
# ---------------------------------------------------------------------------


class OrderForm(forms.Form):  # type: ignore[misc]
    customer_id = forms.IntegerField()
    book_id = forms.IntegerField()
    quantity = forms.IntegerField(min_value=1)


class _Refused(Exception):
    """Leaves the atomic block (rolling it back) carrying the response to send."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


@require_POST  # type: ignore[untyped-decorator]
def place_order(request: HttpRequest) -> HttpResponse:
    """POST /orders: take the copies and store the order atomically; never oversell."""
    try:
        body = json.loads(request.body)
    except ValueError:  # also UnicodeDecodeError
        return problem(422, "Unprocessable Content", "the body is not JSON")
    if not isinstance(body, dict):
        return problem(422, "Unprocessable Content", "the body must be a JSON object")
    form = OrderForm(body)
    if not form.is_valid():
        return _invalid(form)
    customer_id, book_id, quantity = (form.cleaned_data[k] for k in ("customer_id", "book_id", "quantity"))
    try:
        with transaction.atomic():  # one transaction: everything below, or nothing
            # Check and decrement in ONE statement: the database evaluates the WHERE
            # on the current row under its write lock, so no other buyer can slip in
            # between the check and the write (the SQL is UPDATE ... SET quantity =
            # quantity - n WHERE book_id = ... AND quantity >= n).
            taken = Stock.objects.filter(book_id=book_id, quantity__gte=quantity).update(
                quantity=F("quantity") - quantity
            )
            book = Book.objects.filter(pk=book_id).first()
            if book is None:
                raise _Refused(problem(404, "Not Found", f"book {book_id} does not exist"))
            if not Customer.objects.filter(pk=customer_id).exists():
                raise _Refused(problem(404, "Not Found", f"customer {customer_id} does not exist"))
            if taken != 1:
                available = Stock.objects.filter(book_id=book_id).values_list("quantity", flat=True).first()
                detail = f"book {book_id}: {quantity} wanted, {available or 0} in stock"
                raise _Refused(problem(409, "Conflict", detail))
            order = Order.objects.create(customer_id=customer_id, placed_at=_now(), status="paid")
            OrderLine.objects.create(order=order, book=book, quantity=quantity, unit_price=book.price)
    except _Refused as refused:  # the atomic block has rolled back the stock already taken
        return refused.response
    return JsonResponse(
        {
            "id": order.id,
            "customer_id": customer_id,
            "book_id": book_id,
            "quantity": quantity,
            "unit_price": book.price,
            "status": order.status,
        },
        status=201,
    )


def _invalid(form: Any) -> HttpResponse:
    detail = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
    return problem(422, "Unprocessable Content", detail)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # naive UTC, like the data set


urlpatterns = [
    path("books", catalog),
    path("orders", place_order),
]
