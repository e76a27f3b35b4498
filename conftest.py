"""Shared test configuration: the exercise switch and the database option."""

from __future__ import annotations

import os

import pytest

from coursekit.impl import IMPL_ENV, IMPLEMENTATIONS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        choices=IMPLEMENTATIONS,
        default=None,
        help=f"which implementation the exercise tests import (mirrors {IMPL_ENV})",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis keeps examples and caches in ./.hypothesis by default; keep the
    # course checkout clean by sending them to the git-ignored work folder.
    from hypothesis.configuration import set_hypothesis_home_dir

    from coursekit.paths import work_dir

    set_hypothesis_home_dir(str(work_dir("hypothesis")))

    # Set before collection, so test modules that call coursekit.impl.load()
    # at import time already see the choice.
    chosen = config.getoption("--impl", default=None)
    if chosen:
        os.environ[IMPL_ENV] = chosen


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_sessionstart(session: pytest.Session) -> None:
    # Asking for PostgreSQL and silently testing nothing would be worse than
    # failing: check the server answers before any test runs.
    from coursekit import db

    url = db.configured_url()
    if url is None:
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.exit(f"{db.DATABASE_URL_ENV} is set but the database is unreachable: {exc}", 3)
    finally:
        engine.dispose()
