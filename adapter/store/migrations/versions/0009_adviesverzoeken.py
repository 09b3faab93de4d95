"""Adviesverzoeken: the requests for advice we put out to adviesorganisaties, and the advice that came back.

``id`` is our adviesverzoekId (the loket's ``adviesverzoekId``, 40 characters at most). ``state``: uitgezet
(stored and relayed, or being relayed) | gereed (the advice came back) | ingetrokken (withdrawn from the
zaak side) | verlopen (einddatum passed without an advice; also derived on read). ``trigger_key`` makes a
trigger idempotent (a ZGW notification's rule, an HTTP caller's Idempotency-Key). ``message_id`` is the
outbox message that relays it (``messages show``).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "adviesverzoeken",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("zaak", sa.String(1000), nullable=False),
        sa.Column("aanvraagnummer", sa.String(64), nullable=False),
        sa.Column("adviseur_oin", sa.String(20), nullable=False),
        sa.Column("adviseur", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("omschrijving", sa.Text, nullable=False),
        sa.Column("einddatum", sa.Date, nullable=False),
        sa.Column("documents", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("bron", sa.String(32), nullable=False),
        sa.Column("trigger_key", sa.String(255), unique=True),
        sa.Column("message_id", _ID),
        sa.Column("channel_ref", sa.String(255)),
        sa.Column("advies_message_id", _ID),
        sa.Column("advies_strekking", sa.String(80)),
        sa.Column("advies_datum", sa.Date),
        sa.Column("advies_documents", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uitgezet_at", sa.DateTime(timezone=True)),
        sa.Column("gereed_at", sa.DateTime(timezone=True)),
        sa.Column("ingetrokken_at", sa.DateTime(timezone=True)),
        sa.Column("verlopen_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_adviesverzoeken_aanvraag", "adviesverzoeken", ["aanvraagnummer"])
    op.create_index("ix_adviesverzoeken_state", "adviesverzoeken", ["state", "einddatum"])


def downgrade() -> None:
    op.drop_index("ix_adviesverzoeken_state", table_name="adviesverzoeken")
    op.drop_index("ix_adviesverzoeken_aanvraag", table_name="adviesverzoeken")
    op.drop_table("adviesverzoeken")
