"""The operators' console: sessions, OpenID Connect logins under way, login locks, indexes for the message log.

``console_sessions``: one row per logged-in browser, keyed by the sha256 of the cookie's token (a copy of the
database holds no usable session); role, CSRF token, when it began and was last used (idle logout), and the
messages a beheerder unmasked in it (each with a reason in ``audit_log``). ``console_logins``: an OpenID
Connect login under way (state, nonce, PKCE verifier), taken once by its callback, in whichever adapter
process that reaches. ``users`` gains a count of wrong passwords in a row and a lock. The message log's
filter columns get indexes that end in ``id``, so "newest first where state = dead" reads the index in order
on PostgreSQL too (SQLite's indexes end in the rowid anyway) instead of sorting every match.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: index name → its columns; those in ``_REPLACED`` replace 0001's single-column ones of the same name
_INDEXES = {
    "ix_messages_state": ["state", "id"],
    "ix_messages_type": ["message_type", "id"],
    "ix_messages_nummer": ["nummer", "id"],
    "ix_messages_received_at": ["received_at", "id"],
    "ix_messages_channel": ["channel", "id"],
    "ix_messages_zender": ["zender", "id"],
    "ix_messages_referentie": ["referentienummer"],
}
_REPLACED = {
    "ix_messages_state": ["state"],
    "ix_messages_type": ["message_type"],
    "ix_messages_nummer": ["nummer"],
    "ix_messages_received_at": ["received_at"],
}


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(128), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unmasked", sa.Text),
    )
    op.create_table(
        "console_logins",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True)))
    for name in _REPLACED:
        op.drop_index(name, table_name="messages")
    for name, columns in _INDEXES.items():
        op.create_index(name, "messages", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="messages")
    for name, columns in _REPLACED.items():
        op.create_index(name, "messages", columns)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
    op.drop_table("console_logins")
    op.drop_table("console_sessions")
