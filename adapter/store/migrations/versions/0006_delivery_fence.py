"""deliveries.fence: the lease's fencing token, raised by every claim (claim, resend, takeover).

A worker writes its delivery's outcome and checkpoints only while the row still carries the token it
claimed with, so a worker whose lease was taken over cannot overwrite the new holder's work.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a server default, so existing rows get 0 without a table rewrite; the next claim makes it 1
    op.add_column("deliveries", sa.Column("fence", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("fence")
