"""Capstone: a production-ready orders service for the bookstore

Reference solution; the contract (the written spec) is the stub's package
docstring in ``exercises/ex13_capstone/__init__.py`` and notebook 13.

Modules: ``settings`` (given), ``models`` (given: tables, schemas, errors),
``database`` (given: migrations and seed), ``fake_payments`` (given),
``server`` (given: the uvicorn factory), and the service itself: ``auth``,
``repository``, ``payments``, ``observability``, ``app``.
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
