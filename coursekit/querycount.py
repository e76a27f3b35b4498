"""Count the SQL statements an engine sends: the course's unit of database work.

Timings vary from laptop to laptop; statement counts do not. N+1 problems,
query budgets and bulk-insert lessons are all measured with this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class QueryCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __len__(self) -> int:
        return self.count

    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


@contextmanager
def count_queries(engine: Engine | AsyncEngine) -> Iterator[QueryCounter]:
    """Record every statement sent to the database while the block runs.

    An ``executemany`` (one statement, many parameter sets) counts once: that is
    one round trip's worth of SQL, which is what the lessons compare.
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    counter = QueryCounter()

    def _record(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        counter.statements.append(statement)

    event.listen(sync_engine, "before_cursor_execute", _record)
    try:
        yield counter
    finally:
        event.remove(sync_engine, "before_cursor_execute", _record)
