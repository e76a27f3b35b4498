"""Shared test configuration: the exercise switch, the database and Redis options."""

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
    # course checkout clean by sending them to the git-ignored work folder. The
    # variable, rather than set_hypothesis_home_dir, spares runs that never use
    # hypothesis its import (check must answer within seconds).
    from coursekit.paths import work_dir

    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(work_dir("hypothesis")))

    # Set before collection, so test modules that call coursekit.impl.load()
    # at import time already see the choice.
    chosen = config.getoption("--impl", default=None)
    if chosen:
        os.environ[IMPL_ENV] = chosen

    _configure_nbval(config)


def _configure_nbval(config: pytest.Config) -> None:
    """Make a plain `pytest --nbval notebooks/` run the notebooks the way the course does.

    Others type `pytest --nbval notebooks/` (Binder, a conda env, their own CI):
    it must mean the kernel of this environment and the course's sanitize file.
    These are nbval's options, unknown when nbval is off (`-p no:nbval`), so they
    are set here rather than in addopts; an explicit command-line choice wins.
    """
    option = config.option
    if not (getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)):
        return
    if not option.nbval_current_env and not option.nbval_kernel_name:
        option.nbval_current_env = True
    if option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(config.rootpath / "nbval-sanitize.cfg")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_database_problem: list[str] = []  # filled once per session by the first db test


def _check_database() -> str:
    """'' when the configured database answers; otherwise a message naming COURSE_DATABASE_URL."""
    from coursekit import db

    try:
        url = db.configured_url()
    except db.DatabaseUrlError as exc:
        return str(exc)
    if url is None:
        return ""
    from sqlalchemy import create_engine, text

    engine = create_engine(
        url, connect_args={"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        where = url.render_as_string(hide_password=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{db.DATABASE_URL_ENV}={where} is set but the database does not answer: {reason}"
    finally:
        engine.dispose()
    return ""


REDIS_URL_ENV = "COURSE_REDIS_URL"
_redis_problem: list[str] = []  # filled once per session by the first redis test


def _check_redis() -> str:
    """'' when COURSE_REDIS_URL is unset (the in-process store) or answers; else a message naming it."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return ""
    import re

    import redis

    where = re.sub(r"//[^@/]*@", "//***@", url)  # never print a password
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    except ValueError as exc:
        return f"{REDIS_URL_ENV}={where} is not a Redis URL ({exc}); expected e.g. redis://127.0.0.1:6379/0"
    try:
        client.ping()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{REDIS_URL_ENV}={where} is set but Redis does not answer: {reason}"
    finally:
        client.close()
    return ""


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test opens a connection. Only tests that use the
    # database (or Redis) need it: an unreachable server must not block exercises
    # that use none. Asking for a server and silently testing nothing would be
    # worse than failing, so such tests fail (never skip) here, the variable named.
    if item.get_closest_marker("db") is not None:
        if not _database_problem:
            _database_problem.append(_check_database())
        if _database_problem[0]:
            pytest.fail(_database_problem[0], pytrace=False)
    if item.get_closest_marker("redis") is not None:
        if not _redis_problem:
            _redis_problem.append(_check_redis())
        if _redis_problem[0]:
            pytest.fail(_redis_problem[0], pytrace=False)
