"""outbox: deliveries, their step checkpoints and attempts, verzoeknummer → zaak links.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", Id, sa.ForeignKey("messages.id"), nullable=False, unique=True),
        sa.Column("nummer", sa.String(64)),
        sa.Column("creates_zaak", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("target", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_deliveries_nummer", "deliveries", ["nummer"])
    op.create_table(
        "delivery_steps",
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "zaak_links",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("nummer", sa.String(64), primary_key=True),
        sa.Column("zaaktype", sa.String(200), primary_key=True),
        sa.Column("zaak_url", sa.String(1000), nullable=False),
        sa.Column("zaak_identificatie", sa.String(100)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("calls", sa.Text),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    for t in ("delivery_attempts", "zaak_links", "delivery_steps", "deliveries"):
        op.drop_table(t)
