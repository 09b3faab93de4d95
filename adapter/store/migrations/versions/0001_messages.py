"""messages: the message log, inbox and error store.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("correlation_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("berichtcode", sa.String(8)),
        sa.Column("zender", sa.String(320)),
        sa.Column("ontvanger", sa.String(320)),
        sa.Column("referentienummer", sa.String(255)),
        sa.Column("cross_refnummer", sa.String(255)),
        sa.Column("tijdstip_bericht", sa.String(32)),
        sa.Column("nummer", sa.String(64)),
        sa.Column("volgnummer", sa.Integer),
        sa.Column("dedup_key", sa.String(700), unique=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(16)),
        sa.Column("error_text", sa.Text),
        sa.Column("answer", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_messages_state", "messages", ["state"])
    op.create_index("ix_messages_type", "messages", ["message_type"])
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_messages_nummer", "messages", ["nummer"])


def downgrade() -> None:
    op.drop_table("messages")
