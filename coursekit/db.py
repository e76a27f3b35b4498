"""Database engines for lessons and tests: SQLite by default, PostgreSQL on request.

Every lesson and exercise asks for a *named* database (``"nb04"``, ``"ex05"``).
On SQLite that is a file in the work folder; on PostgreSQL (``COURSE_DATABASE_URL``
set, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) it is a schema
of that one database, selected through ``search_path``. Either way names never
collide, so lessons cannot break each other's tables.
"""

from __future__ import annotations

import os
import re
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from coursekit.paths import work_dir

DATABASE_URL_ENV: Final = "COURSE_DATABASE_URL"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"database name must match {_NAME.pattern}, got {name!r}")
    return name


def configured_url() -> URL | None:
    """The PostgreSQL (or other) URL from ``COURSE_DATABASE_URL``, normalised to psycopg 3."""
    raw = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not raw:
        return None
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def backend() -> str:
    """``"sqlite"`` or ``"postgresql"``: which database the course is using right now."""
    url = configured_url()
    return "sqlite" if url is None else url.get_backend_name()


def sync_url(name: str) -> URL:
    url = configured_url()
    if url is None:
        return make_url(f"sqlite:///{work_dir('db') / f'{_check_name(name)}.sqlite'}")
    return url


def _connect_args(name: str, url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # timeout: wait for a competing writer instead of failing at once
        # ("database is locked"); the concurrency lessons race writers on purpose.
        return {"timeout": 30}
    if url.get_backend_name() == "postgresql":
        return {"options": f"-csearch_path={_check_name(name)}"}
    return {}


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    # SQLite ignores FOREIGN KEY constraints unless each connection asks for them.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def make_engine(name: str, **kwargs: Any) -> Engine:
    """A synchronous engine for the named database (see the module docstring)."""
    url = sync_url(name)
    engine = create_engine(url, connect_args=_connect_args(name, url), **kwargs)
    if url.get_backend_name() == "sqlite":
        _enable_sqlite_foreign_keys(engine)
    return engine


def make_async_engine(name: str, **kwargs: Any) -> AsyncEngine:
    """The asyncio twin of :func:`make_engine` (aiosqlite, or psycopg 3 in async mode)."""
    url = sync_url(name)
    is_sqlite = url.get_backend_name() == "sqlite"
    async_url = url.set(drivername="sqlite+aiosqlite") if is_sqlite else url
    engine = create_async_engine(async_url, connect_args=_connect_args(name, url), **kwargs)
    if url.get_backend_name() == "sqlite":
        _enable_sqlite_foreign_keys(engine.sync_engine)
    return engine


def reset_database(name: str) -> None:
    """Start the named database empty: delete the SQLite file, or recreate the schema."""
    url = sync_url(_check_name(name))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(database + suffix):
                os.remove(database + suffix)
        return
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
    finally:
        admin.dispose()


def fresh_engine(name: str, **kwargs: Any) -> Engine:
    """:func:`reset_database` then :func:`make_engine`."""
    reset_database(name)
    return make_engine(name, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
