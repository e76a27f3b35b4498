"""orders.status with a CHECK constraint, and an index for orders by customer

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401  (the usual imports of a migration)
from alembic import op  # noqa: F401

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Task 4: take the schema from revision 0001 to the models (revision 0002).

    Compare revision 0001
    (``coursekit/orders_schema/migrations/versions/rev0001_create_schema.py``)
    with the models (``coursekit/orders_schema/__init__.py``). After upgrade,
    table ``orders`` has:

    - column ``status``: VARCHAR(12), NOT NULL, ``'placed'`` for every order
      that existed before the upgrade and for new orders that do not say;
    - the CHECK constraint ``ck_orders_status_known``, which accepts exactly
      the statuses ``placed``, ``paid``, ``shipped`` and ``cancelled``;
    - the index ``ix_orders_customer_id`` on ``customer_id``;

    and nothing else has changed: every row of every table is kept. Alembic's
    autogenerate then finds no difference between the database and the models.

    Facts worth knowing: SQLite's ALTER TABLE can add a column but cannot add
    or drop a constraint; the models' MetaData has a naming convention
    (``"ck_%(table_name)s_%(constraint_name)s"``) that Alembic applies to the
    names a migration passes, unless told a name is final; autogenerate never
    detects CHECK constraints; a migration is a snapshot of one moment, and
    must keep working after the models change.
    """
    raise NotImplementedError("Task 4: write the upgrade")


def downgrade() -> None:
    """Task 4: undo upgrade() exactly: back to the revision 0001 schema, every row kept.

    No column, constraint or index of revision 0002 is left behind, and
    upgrading again afterwards works.
    """
    raise NotImplementedError("Task 4: write the downgrade")
