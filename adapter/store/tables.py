"""SQLAlchemy Core table definitions (the migrations create the same shape)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("correlation_id", String(32), nullable=False),
    Column("channel", String(16), nullable=False),  # stuf-lvo | stam
    Column("message_type", String(64), nullable=False),
    Column("berichtcode", String(8)),
    Column("zender", String(320)),
    Column("ontvanger", String(320)),
    Column("referentienummer", String(255)),
    Column("cross_refnummer", String(255)),
    Column("tijdstip_bericht", String(32)),
    Column("nummer", String(64)),  # aanvraagnummer (StUF-LVO) or verzoeknummer (STAM)
    Column("volgnummer", Integer),
    # Set only for accepted messages: channel|zender|referentienummer. Unique, so a resend is
    # recognised even under concurrency; rejected messages leave it NULL and never block a resend.
    Column("dedup_key", String(700), unique=True),
    Column("body", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the canonical (C14N) message element
    Column("state", String(16), nullable=False),  # received | rejected (delivery adds more)
    Column("error_code", String(16)),
    Column("error_text", Text),
    Column("answer", Text),  # the Bv03/Fo03 (or HTTP answer) that was sent, byte for byte
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

Index("ix_messages_state", messages.c.state)
Index("ix_messages_type", messages.c.message_type)
Index("ix_messages_received_at", messages.c.received_at)
Index("ix_messages_nummer", messages.c.nummer)
