"""orders.status with a CHECK constraint, and an index for orders by customer

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401  (you will need it)
from alembic import op  # noqa: F401  (you will need it)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Task 4 (TODO 8): take the schema from revision 0001 to the models (revision 0002).

    Read both: revision 0001 in
    ``coursekit/orders_schema/migrations/versions/rev0001_create_schema.py`` and
    the models in ``coursekit/orders_schema/__init__.py``. On table ``orders``:

    1. add column ``status``: String(12), NOT NULL; every existing order must
       become ``'placed'`` (a ``server_default`` fills existing rows);
    2. add the CHECK constraint ``ck_orders_status_known``:
       ``status IN ('placed', 'paid', 'shipped', 'cancelled')``;
    3. add the index ``ix_orders_customer_id`` on ``customer_id``.

    SQLite cannot add a CHECK constraint with ALTER TABLE, so do all three inside
    ``with op.batch_alter_table("orders") as batch_op:`` (Alembic then rebuilds
    the table on SQLite and emits plain ALTER TABLE on PostgreSQL).

    The models' MetaData has a naming convention ("ck_%(table_name)s_..."), and
    Alembic applies it to the names you pass: wrap full names in ``op.f(...)``
    ("final name") so they are used exactly as written.
    """
    # TODO 8
    raise NotImplementedError("Task 4: write the upgrade")


def downgrade() -> None:
    """Task 4 (TODO 9): undo upgrade() exactly, keeping every row: index, CHECK, column.

    The CHECK constraint mentions ``status``, so drop it before the column.
    """
    # TODO 9
    raise NotImplementedError("Task 4: write the downgrade")
