"""jobs: locks (one run per interval across processes) and the record of every run.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128)),
        sa.Column("locked_until", TS),
        sa.Column("last_started_at", TS),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("found", sa.Integer),
        sa.Column("new", sa.Integer),
        sa.Column("errors", sa.Integer),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_job_runs_name", "job_runs", ["name"])


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_table("job_locks")
