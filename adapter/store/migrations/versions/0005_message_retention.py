"""messages.body_purged_at / body_truncated: retention (AVG) purges bodies and caps rejected ones.

A purged body is emptied (``b""``: no table rewrite to make the column nullable) and the time is kept,
so ``messages show`` can say when; a rejected body stored shorter than received is marked truncated
(``size`` keeps the size as received).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("body_purged_at", sa.DateTime(timezone=True)))
    op.add_column("messages", sa.Column("body_truncated", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("body_truncated")
        batch.drop_column("body_purged_at")
