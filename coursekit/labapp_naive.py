"""The naive lab app, frozen: the baseline of notebook 10 and of ex10's load test.

A copy of ``exercises/ex10_lab_app.py`` as shipped (the learner edits that
file; this one stays naive). See that module for the API and its contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from coursekit.bookstore import Book, Customer, Order, OrderLine
from coursekit.dataset import bookstore_engine

__all__ = ["NewOrder", "OrderLineIn", "create_app"]

PROBLEM_JSON = "application/problem+json"


# ----------------------------------------------------------------- given: schemas and problems
class OrderLineIn(BaseModel):
    book_id: int = Field(gt=0)
    quantity: int = Field(ge=1, le=10)


class NewOrder(BaseModel):
    customer_id: int = Field(gt=0)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=10)

    @field_validator("lines")
    @classmethod
    def distinct_books(cls, lines: list[OrderLineIn]) -> list[OrderLineIn]:
        if len({line.book_id for line in lines}) != len(lines):
            raise ValueError("each book may appear in one line only")
        return lines


def _problem(status: int, detail: str) -> JSONResponse:
    titles = {404: "Not Found", 409: "Conflict", 422: "Unprocessable Content"}
    body = {"type": "about:blank", "title": titles.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_problem(_request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
        return _problem(422, f"invalid request: {where}"[:500])


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _rating(ratings: list[int]) -> float | None:
    return round(sum(ratings) / len(ratings), 2) if ratings else None


# ----------------------------------------------------------------- the app (naive)
def create_app(database: str = "ex10") -> FastAPI:
    engine = bookstore_engine(database)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="Bookstore lab app", lifespan=lifespan)
    app.state.engine = engine
    _install_problem_handlers(app)

    def summary(book: Book) -> dict[str, Any]:
        ratings = [review.rating for review in book.reviews]
        return {
            "id": book.id,
            "title": book.title,
            "author": book.author.name,
            "genre": book.genre,
            "price": _money(book.price),
            "rating": _rating(ratings),
            "reviews": len(ratings),
        }

    @app.get("/books")
    async def browse(
        genre: str | None = None,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
    ) -> dict[str, Any]:
        with Session(engine) as session:
            query = select(Book).order_by(Book.id)
            if genre is not None:
                query = query.where(Book.genre == genre)
            position = session.scalar(
                select(func.count()).select_from(query.where(Book.id <= after).subquery())
            )
            books = list(session.scalars(query.offset(position).limit(limit + 1)))
            page = [summary(book) for book in books[:limit]]
            more = len(books) > limit
            return {"items": page, "next": page[-1]["id"] if more else None}

    @app.get("/search")
    async def search(q: Annotated[str, Query(min_length=2, max_length=50)]) -> dict[str, Any]:
        with Session(engine) as session:
            needle = q.lower()
            found = [b for b in session.scalars(select(Book).order_by(Book.id)) if needle in b.title.lower()]
            items = [{"id": b.id, "title": b.title, "author": b.author.name} for b in found[:20]]
            return {"items": items}

    @app.get("/books/{book_id}")
    async def view(book_id: int) -> dict[str, Any]:
        with Session(engine) as session:
            book = session.get(Book, book_id)
            if book is None:
                raise HTTPException(404, f"book {book_id} does not exist")
            lines = session.scalars(select(OrderLine).where(OrderLine.book_id == book_id))
            sold = sum(line.quantity for line in lines if line.order.status != "cancelled")
            stock = book.stock.quantity if book.stock is not None else 0
            return summary(book) | {"isbn": book.isbn, "stock": stock, "sold": sold}

    @app.post("/orders", status_code=201)
    async def place_order(order: NewOrder) -> dict[str, Any]:
        with Session(engine) as session:
            if session.get(Customer, order.customer_id) is None:
                raise HTTPException(404, f"customer {order.customer_id} does not exist")
            placed = Order(customer_id=order.customer_id, placed_at=dt.datetime.now(dt.UTC), status="paid")
            session.add(placed)
            total = Decimal("0.00")
            lines = []
            for wanted in order.lines:
                book = session.get(Book, wanted.book_id)
                if book is None:
                    raise HTTPException(404, f"book {wanted.book_id} does not exist")
                in_stock = book.stock.quantity if book.stock is not None else 0
                if book.stock is None or in_stock < wanted.quantity:
                    raise HTTPException(409, f"book {wanted.book_id} has {in_stock} copies in stock")
                book.stock.quantity = in_stock - wanted.quantity
                session.add(
                    OrderLine(order=placed, book_id=book.id, quantity=wanted.quantity, unit_price=book.price)
                )
                total += book.price * wanted.quantity
                lines.append(
                    {"book_id": book.id, "quantity": wanted.quantity, "unit_price": _money(book.price)}
                )
            session.commit()
            return {
                "id": placed.id,
                "customer_id": order.customer_id,
                "status": placed.status,
                "total": _money(total),
                "lines": lines,
            }

    return app
