"""The bookstore contract in Flask: plain SQLAlchemy and Pydantic, no extensions.

Flask brings routing, the request and the response; validation is the same
Pydantic models FastAPI uses, and the data layer is shared byte for byte.
Flask is a WSGI app: one request per worker thread or process at a time.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from coursekit.frameworks import service
from coursekit.frameworks.service import OrderIn, PageQuery, ServiceError


def _problem(status: int, title: str, detail: str) -> Response:
    response = jsonify(service.problem_body(status, title, detail))
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def create_app(engine: Engine) -> Flask:
    sessions = sessionmaker(engine, expire_on_commit=False)
    app = Flask("bookstore_flask")

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError) -> Response:
        return _problem(422, "Unprocessable Content", service.validation_detail(list(exc.errors())))

    @app.errorhandler(ServiceError)
    def refused(exc: ServiceError) -> Response:
        return _problem(exc.status, exc.title, str(exc))

    @app.get("/books")
    def catalog() -> dict[str, Any]:
        query = PageQuery.model_validate(request.args.to_dict())
        with sessions() as session:
            return service.catalog_page(session, query).model_dump(mode="json")

    @app.post("/orders")
    def place_order() -> tuple[dict[str, Any], int]:
        body = request.get_json(silent=True)  # None for a body that is not JSON
        return service.place_order(sessions, OrderIn.model_validate(body)).model_dump(mode="json"), 201

    return app
