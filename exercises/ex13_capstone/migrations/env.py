"""Alembic environment of the orders service: migrates the engine handed over in code.

There is no alembic.ini: ``database.alembic_config(engine)`` builds the configuration
and puts the engine into ``config.attributes``, so a migration runs against exactly
the database (SQLite file or PostgreSQL schema) the caller chose.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, MetaData

config = context.config


def run_migrations_online() -> None:
    engine: Engine = config.attributes["engine"]
    target_metadata: MetaData | None = config.attributes.get("target_metadata")
    with engine.connect() as connection:
        # render_as_batch: ALTER TABLE on PostgreSQL, a table rebuild on SQLite.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("these migrations run online only (pass an engine via alembic_config)")
run_migrations_online()
