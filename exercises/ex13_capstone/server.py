"""Given: the factory that ``coursekit.servers.start_app`` serves under uvicorn.

``serve(database, secret)`` builds the service for an already prepared database
(``prepare_database``), with an in-process fake payment service. Servers sharing
``database`` and ``secret`` are workers of one deployment: a token one issues,
the others accept, and their buyers race for the same stock.
"""

from __future__ import annotations

from fastapi import FastAPI

from .app import create_app
from .fake_payments import FakePaymentService
from .settings import Settings

__all__ = ["serve"]


def serve(database: str, secret: str, argon2_memory_kib: int = 19_456) -> FastAPI:
    settings = Settings(
        database=database, jwt_secret=secret, argon2_memory_kib=argon2_memory_kib, argon2_time_cost=1
    )
    return create_app(settings, payments=FakePaymentService().transport())
