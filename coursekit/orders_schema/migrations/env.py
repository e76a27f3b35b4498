"""Alembic environment for ex04: migrates the engine that ``alembic_config()`` hands over.

There is no alembic.ini: tests and notebooks build the configuration in code and
put the engine into ``config.attributes``, so a migration runs against exactly
the database (SQLite file or PostgreSQL schema) the caller chose. Shared by the
stub and the solution: each adds its own ``migrations/versions`` folder (revision
0002) to this folder's ``versions`` (revision 0001), see ``alembic_config_for``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, MetaData

config = context.config


def run_migrations_online() -> None:
    engine: Engine = config.attributes["engine"]
    target_metadata: MetaData | None = config.attributes.get("target_metadata")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table on SQLite (create a copy, copy the rows,
            # drop the old table, rename). With foreign keys enforced, dropping a
            # parent table that child rows point to fails, so switch enforcement off
            # for the migration. The PRAGMA only works outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        # render_as_batch: autogenerate writes `with op.batch_alter_table(...)`,
        # which is a plain ALTER TABLE on PostgreSQL and a table rebuild on SQLite.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
            if problems:
                raise RuntimeError(f"the migration broke foreign keys: {problems}")


if context.is_offline_mode():
    raise RuntimeError("ex04 migrations run online only (pass an engine via alembic_config)")
run_migrations_online()
