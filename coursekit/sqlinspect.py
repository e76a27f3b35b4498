"""See what the ORM really sends: capture SELECTs, EXPLAIN them, count their rows.

    with capture_selects(engine) as sent:
        report(session)                  # any code: ORM, Core, loader options...
    for statement in sent:
        print(explain(engine, statement))
    print(rows_returned(engine, sent))   # rows the database sent back, in total

The plans are those of the exact SQL and parameters the code sent, on SQLite
(``EXPLAIN QUERY PLAN``) or PostgreSQL (``EXPLAIN``), so notebook 05 and the
ex05 tests judge the same thing a learner's code does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CapturedStatement", "capture_selects", "explain", "rows_returned"]


@dataclass(frozen=True)
class CapturedStatement:
    """One SQL statement as the driver received it, with its parameters."""

    sql: str
    params: Any

    def __str__(self) -> str:
        return self.sql


@contextmanager
def capture_selects(engine: Engine | AsyncEngine) -> Iterator[list[CapturedStatement]]:
    """Record every SELECT (or WITH ... SELECT) the engine sends while the block runs."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    sent: list[CapturedStatement] = []

    def _record(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append(CapturedStatement(statement, params))

    event.listen(sync_engine, "before_cursor_execute", _record)
    try:
        yield sent
    finally:
        event.remove(sync_engine, "before_cursor_execute", _record)


def _plan_lines(
    connection: Connection, statement: CapturedStatement, analyze: bool, prefer_indexes: bool
) -> list[str]:
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement.sql, statement.params)
        # Rows are (id, parent, notused, detail): indent each detail under its parent.
        depth: dict[int, int] = {0: -1}
        lines = []
        for node_id, parent, _unused, detail in rows:
            depth[node_id] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node_id] + str(detail))
        return lines
    if prefer_indexes:
        # On tiny tables PostgreSQL rightly prefers reading the whole table;
        # this asks "is there a usable index?" instead (for this transaction only).
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    prefix = "EXPLAIN ANALYZE " if analyze else "EXPLAIN "
    rows = connection.exec_driver_sql(prefix + statement.sql, statement.params)
    return [str(row[0]) for row in rows]


def explain(
    engine: Engine,
    statement: CapturedStatement,
    *,
    analyze: bool = False,
    prefer_indexes: bool = False,
) -> str:
    """The query plan of a captured statement, one node per line.

    ``analyze`` (PostgreSQL only) runs the statement and adds real row counts
    and timings; ``prefer_indexes`` (PostgreSQL only) disables sequential scans
    for the EXPLAIN, to check that an index *can* serve the query on a table
    too small for the planner to bother.
    """
    with engine.connect() as connection:
        try:
            return "\n".join(_plan_lines(connection, statement, analyze, prefer_indexes))
        finally:
            connection.rollback()


def rows_returned(engine: Engine, statements: Sequence[CapturedStatement]) -> int:
    """Run the captured SELECTs again and count the rows they return, in total."""
    with engine.connect() as connection:
        return sum(len(connection.exec_driver_sql(s.sql, s.params).all()) for s in statements)
