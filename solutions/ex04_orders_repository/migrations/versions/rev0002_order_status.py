"""orders.status with a CHECK constraint, and an index for orders by customer

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, not imported from the models: a migration is a snapshot of one
# moment, and must keep working after the models move on.
STATUS_CHECK = "status IN ('placed', 'paid', 'shipped', 'cancelled')"


def upgrade() -> None:
    # batch_alter_table: plain ALTER TABLE statements on PostgreSQL; on SQLite,
    # which cannot add a CHECK constraint to an existing table, one rebuild of
    # the table that applies all three changes at once.
    with op.batch_alter_table("orders") as batch_op:
        # server_default fills the existing rows, which NOT NULL requires.
        batch_op.add_column(
            sa.Column("status", sa.String(length=12), nullable=False, server_default="placed")
        )
        # op.f(): "final" name, used as written. Without it Alembic applies the
        # models' naming convention ("ck_%(table_name)s_...") a second time.
        batch_op.create_check_constraint(op.f("ck_orders_status_known"), STATUS_CHECK)
        batch_op.create_index(op.f("ix_orders_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:
    # The exact mirror image, in reverse order: the constraint refers to the
    # column, so it goes first.
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_index(op.f("ix_orders_customer_id"))
        batch_op.drop_constraint(op.f("ck_orders_status_known"), type_="check")
        batch_op.drop_column("status")
