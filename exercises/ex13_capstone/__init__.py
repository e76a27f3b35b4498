"""Capstone: a production-ready orders service for the bookstore

The written spec. Build the bookstore's orders service in this package; the
grading suite (``python -m coursekit grade 13``, or ``check("ex13")``) scores it in
five sections: functionality, security, concurrency, observability, performance.

Given (infrastructure, not the lesson; keep them as they are): ``settings.py``
(``Settings``), ``models.py`` (tables, API schemas, errors, roles), ``database.py``
(Alembic migrations in ``migrations/``, ``open_engine``, ``prepare_database`` and the
seed: 50 books with 1,000 copies each, one ``staff`` member, customers
``reader01`` ... ``reader24``, all with the password ``SEED_PASSWORD``),
``fake_payments.py`` (a payment service with injectable faults) and ``server.py``
(the uvicorn factory). Yours: ``auth.py``, ``repository.py``, ``payments.py``,
``observability.py``, ``app.py``; each states its own contract. The design is yours.

Endpoints (JSON; money as strings with two decimals, "12.50"):

=========================  ==========  ================================================
``POST /token``            anyone      form ``username``, ``password`` (OAuth2 password
                                       flow) -> 200 ``{"access_token", "token_type":
                                       "bearer"}``; 401 for a wrong password and for an
                                       unknown user alike; 429 + ``Retry-After`` after 5
                                       failed logins for a username within 60 s
``GET /books``             anyone      ``?limit=&cursor=`` -> ``BookPage`` by id
``POST /orders``           customer    ``OrderIn`` -> 201 ``OrderOut`` (status ``paid``)
                                       with ``Location: /orders/{id}``; 409 too few
                                       copies; 422 invalid body or unknown book; 402
                                       payment declined; 503 + ``Retry-After`` payment
                                       unavailable (the last two cancel the order and
                                       put its copies back)
``GET /orders``            customer,   ``?limit=&cursor=`` -> ``OrderPage``, newest
                           staff       first: a customer's own orders, staff see all
``GET /orders/{id}``       customer,   ``OrderOut``; another customer's order is a 404,
                           staff       exactly like a missing one
``POST /orders/{id}/ship`` staff       a paid order -> 200 ``shipped``; 409 otherwise
``GET /health/live``       anyone      200 while the process answers
``GET /health/ready``      anyone      200 when the database answers, else a 503 problem
                                       within about a second
``GET /metrics``           anyone      Prometheus text (see ``observability.py``)
=========================  ==========  ================================================

- Authentication: ``Authorization: Bearer <token>`` (see ``auth.py``); a missing or
  invalid token is a 401 with ``WWW-Authenticate: Bearer``; a valid token without
  the role an endpoint needs is a 403.
- Errors: every 4xx and 5xx is an RFC 9457 problem (``application/problem+json``,
  ``type``, ``title``, ``status``, ``detail``, ``instance``) that names no table,
  driver, exception or file.
- Bodies: unknown fields are refused (422): a customer never sets ``customer_id``,
  ``status``, prices or totals.
- Pages: ``limit`` 1..100 (default 20; over 100 is a 422); ``next_cursor`` is opaque
  and None on the last page; a cursor this endpoint did not issue is a 400.
- Payments: each paid order is charged exactly once, with retries on transient
  failures and a circuit breaker (see ``payments.py``).
- Concurrency: stock never goes below zero and no copy is lost, across tasks and
  across server processes sharing one database, on SQLite and PostgreSQL.
- Observability: request ids, JSON logs, metrics, readiness (see ``observability.py``).
- Budgets (SQL statements per request, ``coursekit.querycount``): ``GET /orders`` at
  most 3, the same for any page size; ``GET /orders/{id}`` at most 3; ``GET /books``
  at most 2; ``POST /orders`` at most 8 for one line and one more per extra line.
  Under a short locust run (8 users, 4 s, served by uvicorn): no failed request and
  a p95 under 1 s (the reference: below 0.1 s on an idle laptop).
"""

from __future__ import annotations

from .app import create_app
from .auth import InvalidToken, LoginLimiter, decode_token, hash_password, issue_token, verify_password
from .database import CUSTOMERS, SEED_PASSWORD, STAFF, alembic_config, prepare_database
from .fake_payments import FakePaymentService
from .models import OrderOut, OutOfStock, PaymentDeclined, PaymentUnavailable, Principal, UnknownBook
from .observability import JsonLogger, Metrics, ObservabilityMiddleware, current_request_id
from .payments import CircuitBreaker, PaymentClient
from .repository import Repository
from .settings import Settings

__all__ = [
    "CUSTOMERS",
    "SEED_PASSWORD",
    "STAFF",
    "CircuitBreaker",
    "FakePaymentService",
    "InvalidToken",
    "JsonLogger",
    "LoginLimiter",
    "Metrics",
    "ObservabilityMiddleware",
    "OrderOut",
    "OutOfStock",
    "PaymentClient",
    "PaymentDeclined",
    "PaymentUnavailable",
    "Principal",
    "Repository",
    "Settings",
    "UnknownBook",
    "alembic_config",
    "create_app",
    "current_request_id",
    "decode_token",
    "hash_password",
    "issue_token",
    "prepare_database",
    "verify_password",
]
