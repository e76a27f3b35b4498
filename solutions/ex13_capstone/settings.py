"""Given: everything one instance of the orders service is configured with."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """The service's configuration (given; the tests build their own).

    ``database`` names a course database (``coursekit.db``: a SQLite file per run,
    or a PostgreSQL schema when ``COURSE_DATABASE_URL`` is set). The argon2
    defaults are OWASP's minimum for argon2id (19 MiB, 2 passes); tests lower them.
    """

    database: str = "ex13"
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    jwt_issuer: str = "https://bookstore.example"
    jwt_audience: str = "bookstore-orders"
    access_ttl_s: int = 900
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    login_attempts: int = 5  # failed logins per username within login_window_s
    login_window_s: float = 60.0
    page_default: int = 20
    page_max: int = 100
    payment_url: str = "http://payments.internal"
    payment_timeout_s: float = 2.0  # per attempt, wall clock
    payment_attempts: int = 3
    payment_backoff_s: float = 0.05
    breaker_failures: int = 5  # consecutive failed charges that open the circuit
    breaker_reset_s: float = 30.0
