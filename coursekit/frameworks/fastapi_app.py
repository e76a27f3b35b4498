"""The bookstore contract in FastAPI: the reference the Django and Flask ports follow.

Endpoints are ``def`` (not ``async def``): they call the synchronous SQLAlchemy
data layer shared with the Flask app, and FastAPI runs ``def`` endpoints in its
thread pool, so a slow query never blocks the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from coursekit.frameworks import service
from coursekit.frameworks.service import OrderIn, OrderOut, PageOut, PageQuery, ServiceError


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        service.problem_body(status, title, detail), status_code=status, media_type="application/problem+json"
    )


def create_app(engine: Engine) -> FastAPI:
    sessions = sessionmaker(engine, expire_on_commit=False)
    app = FastAPI(title="Bookstore (FastAPI)")

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(422, "Unprocessable Content", service.validation_detail(list(exc.errors())))

    @app.exception_handler(ServiceError)
    async def refused(_request: Request, exc: ServiceError) -> JSONResponse:
        return _problem(exc.status, exc.title, str(exc))

    @app.get("/books")
    def catalog(query: Annotated[PageQuery, Depends()]) -> PageOut:
        with sessions() as session:
            return service.catalog_page(session, query)

    @app.post("/orders", status_code=201)
    def place_order(order: OrderIn) -> OrderOut:
        return service.place_order(sessions, order)

    return app
