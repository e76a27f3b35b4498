"""Given: the database's lifecycle (migrations) and the seed data.

``prepare_database(settings)`` starts the named course database empty, migrates it
to the head revision with Alembic and loads the seed: 50 books with their stock,
one staff member and 24 customers, every one with the password ``SEED_PASSWORD``
(hashed with this package's ``auth.hash_password``, so it needs Task 2's hashing).
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Engine, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from coursekit import db

from .auth import hash_password
from .models import Base, BookRow, StockRow, UserRow
from .settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "BOOKS",
    "CUSTOMERS",
    "INITIAL_STOCK",
    "MIGRATIONS_DIR",
    "SEED_PASSWORD",
    "STAFF",
    "alembic_config",
    "open_engine",
    "prepare_database",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SEED_PASSWORD: Final = "correct horse battery staple"
STAFF: Final = "staff"
CUSTOMERS: Final = tuple(f"reader{number:02d}" for number in range(1, 25))
BOOKS: Final = 50
INITIAL_STOCK: Final = 1_000


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that migrates ``engine`` (``command.upgrade(config, "head")``)."""
    from alembic.config import Config  # imported when used: Alembic costs a tenth of a second to load

    config = Config()
    # Config options go through configparser interpolation: a literal % must be %%.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["engine"] = engine
    config.attributes["target_metadata"] = Base.metadata
    return config


def open_engine(settings: Settings) -> AsyncEngine:
    """The service's async engine on ``settings.database`` (aiosqlite or psycopg 3).

    On SQLite every connection uses write-ahead logging with ``synchronous=NORMAL``
    (the usual production setting: a commit does not wait for the disk to flush, a
    crash loses at most the last commits, never consistency); readers then never
    block the writer. PostgreSQL needs nothing of the kind.
    """
    engine = db.make_async_engine(settings.database, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def prepare_database(settings: Settings) -> None:
    """Empty the database ``settings.database``, migrate it to head and load the seed."""
    db.reset_database(settings.database)
    engine = db.make_engine(settings.database)
    try:
        from alembic import command

        command.upgrade(alembic_config(engine), "head")
        seeded = random.Random(13)
        users = [{"id": 1, "username": STAFF, "role": "staff"}] + [
            {"id": number, "username": name, "role": "customer"}
            for number, name in enumerate(CUSTOMERS, start=2)
        ]
        with engine.begin() as connection:
            connection.execute(
                insert(UserRow),
                [{**user, "password_hash": hash_password(settings, SEED_PASSWORD)} for user in users],
            )
            books = range(1, BOOKS + 1)
            connection.execute(
                insert(BookRow),
                [
                    {"id": book, "title": f"Bookstore title {book:02d}", "price": _price(seeded)}
                    for book in books
                ],
            )
            stock = [{"book_id": book, "quantity": INITIAL_STOCK} for book in books]
            connection.execute(insert(StockRow), stock)
            if connection.dialect.name == "postgresql":
                # Explicit ids leave the sequences at 1: move them past the seed.
                for table in ("users", "books"):
                    sequence = f"pg_get_serial_sequence('{table}', 'id')"
                    connection.exec_driver_sql(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")
    finally:
        engine.dispose()


def _price(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(500, 4500)) / 100
