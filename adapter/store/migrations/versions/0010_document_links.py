"""Document links: the document a target made for a verzoek's bijlage on one of its zaken.

A target whose document identificatie is not deterministic (StUF-ZKN: genereerDocumentIdentificatie, once
per delivery) cannot find the document again from a later message of the same verzoek (an aanvulling, a
later STAM version that lists every document so far), whose checkpoints are its own. This record, kept
across deliveries like ``zaak_links``, lets that later delivery adopt the document instead of making a
second one. ``zaak`` is the zaak's identificatie (or url); ``bijlage`` the bijlage's key (bijlageId);
``omvang`` its size when made, to refuse a bijlage listed again with other content.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_links",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("nummer", sa.String(64), primary_key=True),
        sa.Column("zaak", sa.String(1000), primary_key=True),
        sa.Column("bijlage", sa.String(200), primary_key=True),
        sa.Column("document_identificatie", sa.String(100), nullable=False),
        sa.Column("omvang", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_links")
