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
    # Set before collection, so test modules that call coursekit.impl.load()
    # at import time already see the choice.
    chosen = config.getoption("--impl", default=None)
    if chosen:
        os.environ[IMPL_ENV] = chosen


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
