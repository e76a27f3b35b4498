"""Load the bookstore CSV data set into SQLite (default) or PostgreSQL.

    from coursekit.dataset import bookstore_engine
    engine = bookstore_engine()          # loads once, then reuses the database

The CSV files in ``data/bookstore`` come from ``data/generate.py`` (fixed seed).
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    Numeric,
    Table,
    create_engine,
    func,
    insert,
    select,
    text,
)

from coursekit import db, paths
from coursekit.bookstore import Base

# Parents before children, so foreign keys are satisfied while loading.
TABLE_ORDER = ("authors", "books", "customers", "orders", "order_lines", "reviews", "stock")
BATCH_ROWS = 5_000


def _converter(column_type: Any) -> Callable[[str], Any]:
    if isinstance(column_type, Integer):
        return int
    if isinstance(column_type, Numeric):
        return Decimal
    if isinstance(column_type, DateTime):
        return dt.datetime.fromisoformat
    if isinstance(column_type, Date):
        return dt.date.fromisoformat
    return str


def read_rows(table: Table, csv_dir: Path = paths.DATASET_DIR) -> Iterator[dict[str, Any]]:
    """Rows of one CSV file, converted to the column types of ``table``."""
    converters = {column.name: _converter(column.type) for column in table.columns}
    with (csv_dir / f"{table.name}.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield {name: converters[name](value) for name, value in row.items()}


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_bookstore(engine: Engine, csv_dir: Path = paths.DATASET_DIR) -> dict[str, int]:
    """Create the bookstore tables and load every CSV file; return row counts.

    Uses Core ``insert()`` with lists of dicts (one executemany per batch): the
    fast path that notebook 05 compares with ORM ``add_all``.
    """
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for name in TABLE_ORDER:
            table = Base.metadata.tables[name]
            for batch in _batches(read_rows(table, csv_dir), BATCH_ROWS):
                connection.execute(insert(table), batch)
        if engine.dialect.name == "postgresql":
            _move_sequences_past_loaded_ids(connection)
    return row_counts(engine)


def _move_sequences_past_loaded_ids(connection: Connection) -> None:
    """The CSV rows carry their own ids, which PostgreSQL's id sequences never see: without
    this, the first INSERT that lets the database pick an id collides with a loaded row."""
    quote = connection.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        if "id" not in table.c:
            continue
        name = quote(table.name)
        # pg_get_serial_sequence is NULL for a table without one; setval(NULL, ...) is a no-op.
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, 'id'), coalesce(max(id), 0) + 1, false) "
                f"FROM {name}"
            ),
            {"table": name},
        )


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.scalar(select(func.count()).select_from(Base.metadata.tables[name])) or 0
            for name in TABLE_ORDER
        }


def csv_row_counts(csv_dir: Path = paths.DATASET_DIR) -> dict[str, int]:
    counts = {}
    for name in TABLE_ORDER:
        with (csv_dir / f"{name}.csv").open(encoding="utf-8") as handle:
            counts[name] = sum(1 for _ in handle) - 1
    return counts


def bookstore_engine(name: str = "bookstore", reload: bool = False, **kwargs: Any) -> Engine:
    """An engine on a database of this run holding the whole data set.

    On SQLite the data set is loaded once per machine into a template file and
    each run gets a copy (a few milliseconds instead of a second); on
    PostgreSQL it is loaded into the run's schema.
    """
    if db.backend() == "sqlite":
        target = db.sqlite_path(name)
        if reload or not os.path.exists(target):
            _copy_sqlite_template(target)
    engine = db.make_engine(name, **kwargs)
    if (reload and db.backend() != "sqlite") or not _is_loaded(engine):
        engine.dispose()
        db.reset_database(name)
        engine = db.make_engine(name, **kwargs)
        load_bookstore(engine)
    return engine


def _dataset_fingerprint() -> str:
    """Changes whenever the CSV files or the table definitions change."""
    digest = hashlib.sha256()
    for name in TABLE_ORDER:
        digest.update((paths.DATASET_DIR / f"{name}.csv").read_bytes())
    digest.update((paths.ROOT / "coursekit" / "bookstore.py").read_bytes())
    return digest.hexdigest()[:16]


def _copy_sqlite_template(target: str) -> None:
    templates = paths.work_dir("templates")
    template = templates / f"bookstore-{_dataset_fingerprint()}.sqlite"
    if not template.exists():
        # One builder at a time; the others wait, then find the file ready.
        with (templates / "bookstore.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not template.exists():
                building = template.with_suffix(f".{os.getpid()}.tmp")
                engine = create_engine(f"sqlite:///{building}")
                try:
                    load_bookstore(engine)
                finally:
                    engine.dispose()
                os.replace(building, template)
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.exists(target + suffix):
            os.remove(target + suffix)
    copy = f"{target}.{os.getpid()}.tmp"
    shutil.copyfile(template, copy)
    os.replace(copy, target)


def _is_loaded(engine: Engine) -> bool:
    try:
        return row_counts(engine) == csv_row_counts()
    except Exception:  # missing tables, empty file, wrong schema: reload
        return False
