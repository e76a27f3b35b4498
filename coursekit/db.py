"""Database engines for lessons and tests: SQLite by default, PostgreSQL on request.

Every lesson and exercise asks for a *named* database (``"nb04"``, ``"ex05"``).
On SQLite that is a file in this run's scratch folder; on PostgreSQL
(``COURSE_DATABASE_URL`` set, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
it is a schema of that one database, selected through ``search_path`` and named
``<learner>_<run>_<name>``. Names are per run (see :mod:`coursekit.runs`), so a
notebook, a check and a test run at the same time never touch each other's
tables, and learners sharing one server never touch each other's schemas.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from coursekit import runs
from coursekit.check_protocol import DATABASE_URL_ENV

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SCHEMA_COMMENT = "coursekit run={run} host={host} created={created}"
# Schemas left by runs on other machines (which cannot be asked whether they
# still run) are swept once this old.
STALE_AFTER_S: Final = 24 * 3600


class DatabaseUrlError(ValueError):
    """COURSE_DATABASE_URL is set but unusable; the message names the variable."""


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"database name must match {_NAME.pattern}, got {name!r}")
    return name


def configured_url() -> URL | None:
    """The PostgreSQL (or other) URL from ``COURSE_DATABASE_URL``, normalised to psycopg 3."""
    raw = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not raw:
        return None
    try:
        url = make_url(raw)
    except Exception as exc:
        raise DatabaseUrlError(
            f"{DATABASE_URL_ENV} is not a database URL ({exc}); expected e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test, or unset it to use SQLite"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise DatabaseUrlError(
            f"{DATABASE_URL_ENV} names {url.get_backend_name()!r}; the course supports "
            "PostgreSQL (postgresql+psycopg://...) or, unset, SQLite"
        )
    return url


def schema_name(name: str) -> str:
    """The PostgreSQL schema behind the named database in this run."""
    return f"{runs.learner_name()}_{runs.run_id()}_{_check_name(name)}"


def sqlite_path(name: str) -> str:
    return str(runs.run_dir("db") / f"{_check_name(name)}.sqlite")


def backend() -> str:
    """``"sqlite"`` or ``"postgresql"``: which database the course is using right now."""
    url = configured_url()
    return "sqlite" if url is None else url.get_backend_name()


def sync_url(name: str) -> URL:
    url = configured_url()
    if url is None:
        return make_url(f"sqlite:///{sqlite_path(name)}")
    return url


def _connect_args(name: str, url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # timeout: wait for a competing writer instead of failing at once
        # ("database is locked"); the concurrency lessons race writers on purpose.
        return {"timeout": 30}
    if url.get_backend_name() == "postgresql":
        return {"options": f"-csearch_path={schema_name(name)}"}
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
    schema = schema_name(name)
    comment = _SCHEMA_COMMENT.format(run=runs.run_id(), host=runs.host_tag(), created=int(time.time()))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            _sweep_stale_schemas(connection)
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            connection.execute(text(f"COMMENT ON SCHEMA \"{schema}\" IS '{comment}'"))
    finally:
        admin.dispose()
    _drop_run_schemas_at_exit(url)


_swept_in_this_process = False
_registered_urls: set[str] = set()


def _run_schemas(connection: Any, run: str) -> list[str]:
    prefix = f"{runs.learner_name()}_{run}_"
    rows = connection.execute(
        text("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :prefix)"),
        {"prefix": prefix},
    )
    return [row[0] for row in rows]


def _drop_run_schemas_at_exit(url: URL) -> None:
    """The run's owner drops every schema of the run (its own and its children's)."""
    key = url.render_as_string(hide_password=False)
    if key in _registered_urls:
        return
    _registered_urls.add(key)
    run = runs.run_id()

    def drop() -> None:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for schema in _run_schemas(connection, run):
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()

    runs.on_run_exit(drop)


def _sweep_stale_schemas(connection: Any) -> None:
    """Drop schemas of runs that ended without cleaning up (killed kernels, killed checks)."""
    global _swept_in_this_process
    if _swept_in_this_process:
        return
    _swept_in_this_process = True
    rows = connection.execute(
        text(
            "SELECT n.nspname, d.description FROM pg_namespace n "
            "JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass "
            "WHERE d.description LIKE 'coursekit run=%'"
        )
    )
    now = time.time()
    for schema, description in rows:
        fields = dict(part.split("=", 1) for part in description.split()[1:] if "=" in part)
        run, host = fields.get("run", ""), fields.get("host", "")
        created = float(fields.get("created", "0") or 0)
        gone = runs.stale(run) if host == runs.host_tag() else now - created > STALE_AFTER_S
        if gone:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def fresh_engine(name: str, **kwargs: Any) -> Engine:
    """:func:`reset_database` then :func:`make_engine`."""
    reset_database(name)
    return make_engine(name, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
