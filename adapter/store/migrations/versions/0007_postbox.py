"""Postboxes (SFTP postbus): every file seen in a postbox inbox, and each postbox's connection status.

``postbox_files`` holds one row per remote file name per postbox: what was picked up into the file store
(sha256, size), whether a message matched it, and where it is now (stored | processed | refused |
expired). ``postbox_status`` holds per postbox the last success and the last error, for operators.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "postbox_files",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("postbox", sa.String(64), nullable=False),
        sa.Column("remote_name", sa.String(255), nullable=False),
        sa.Column("aanvraagnummer", sa.String(64)),
        sa.Column("bestandsnaam", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("detail", sa.Text),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True)),
        sa.Column("matched_at", sa.DateTime(timezone=True)),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("postbox", "remote_name", name="uq_postbox_files_name"),
    )
    op.create_index("ix_postbox_files_aanvraag", "postbox_files", ["aanvraagnummer"])
    op.create_table(
        "postbox_status",
        sa.Column("postbox", sa.String(64), primary_key=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_error_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("postbox_status")
    op.drop_index("ix_postbox_files_aanvraag", table_name="postbox_files")
    op.drop_table("postbox_files")
