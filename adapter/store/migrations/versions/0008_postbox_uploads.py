"""Mirroring to postboxes: one row per file (or batch manifest) we upload to a postbox's outbox.

``ident`` is the document's identity and content (``doc:<nummer>:<bijlageId>@<sha256>``) or
``manifest:<batch>``; unique per postbox, so nothing is uploaded twice. ``state``: pending | uploading
(its temporary remote name may hold a part) | done (renamed into place, size and sha256 checked) |
failed (the reason in ``detail``; tried again every run).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "postbox_uploads",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("postbox", sa.String(64), nullable=False),
        sa.Column("ident", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("batch", sa.String(128)),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("remote_name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("postbox", "ident", name="uq_postbox_uploads_ident"),
        sa.UniqueConstraint("postbox", "remote_name", name="uq_postbox_uploads_name"),
    )
    op.create_index("ix_postbox_uploads_state", "postbox_uploads", ["state"])
    op.create_index("ix_postbox_uploads_batch", "postbox_uploads", ["batch"])


def downgrade() -> None:
    op.drop_index("ix_postbox_uploads_batch", table_name="postbox_uploads")
    op.drop_index("ix_postbox_uploads_state", table_name="postbox_uploads")
    op.drop_table("postbox_uploads")
