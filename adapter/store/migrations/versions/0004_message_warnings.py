"""messages.warnings: what a lenient schema check let through, shown by ``messages show``.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("warnings", sa.Text))  # nullable: no rewrite of existing rows


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("warnings")
