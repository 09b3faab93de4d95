"""SQLAlchemy Core table definitions (the migrations create the same shape)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    # JSON list of one-line warnings (element names and lines, never content): what a lenient schema check
    # let through (StUF-LVO with lvo_schema = "lenient": at receipt; STAM verzoek: when the delivery reads it).
    Column("warnings", Text),
    # Retention (adapter/store/retention.py): when the body was purged (emptied; metadata stays), and whether
    # a rejected body was stored cut to [retention] rejected_body_max_bytes (``size`` is the size received).
    Column("body_purged_at", DateTime(timezone=True)),
    Column("body_truncated", Boolean),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The message log's filters (adapter/store/message_log.py): each index ends in id, so a keyset page of the newest
# matches reads the index in order (migration 0012).
Index("ix_messages_state", messages.c.state, messages.c.id)
Index("ix_messages_type", messages.c.message_type, messages.c.id)
Index("ix_messages_received_at", messages.c.received_at, messages.c.id)
Index("ix_messages_nummer", messages.c.nummer, messages.c.id)
Index("ix_messages_channel", messages.c.channel, messages.c.id)
Index("ix_messages_zender", messages.c.zender, messages.c.id)
Index("ix_messages_referentie", messages.c.referentienummer)

#: One delivery per accepted message (the outbox row, inserted in the message's own transaction).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False, unique=True),
    Column("nummer", String(64)),  # deliveries of one verzoek run in order
    # An aanvraag (creates the zaak) is never held up by follow-ups that arrived before it.
    Column("creates_zaak", Boolean, nullable=False, default=False),
    Column("target", String(64)),  # resolved by the mapping at run time
    Column("state", String(16), nullable=False),  # pending | running | retry | done | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True)),
    Column("claimed_by", String(64)),
    #: fencing token of the lease: raised by every claim; outcome and checkpoint writes need the one they claimed with
    Column("fence", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("outcome", Text),  # one-line summary of the last successful run
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)
Index("ix_deliveries_nummer", deliveries.c.nummer)

#: Checkpoints: the result of every step of a delivery, so a retry resumes where it stopped.
#: ``state`` = started (call sent, outcome unknown) | done (result stored).
delivery_steps = Table(
    "delivery_steps",
    metadata,
    Column("delivery_id", Id, ForeignKey("deliveries.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("result", Text),  # JSON
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: verzoeknummer → zaak in a target (the Zaken API cannot search on kenmerk).
zaak_links = Table(
    "zaak_links",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("nummer", String(64), primary_key=True),
    Column("zaaktype", String(200), primary_key=True),
    Column("zaak_url", String(1000), nullable=False),
    Column("zaak_identificatie", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: (verzoeknummer, zaak, bijlage) → the document a target made for it, across deliveries: a later message of
#: the verzoek that lists the bijlage again adopts it (StUF-ZKN's document identificatie is per delivery).
document_links = Table(
    "document_links",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("nummer", String(64), primary_key=True),
    Column("zaak", String(1000), primary_key=True),
    Column("bijlage", String(200), primary_key=True),
    Column("document_identificatie", String(100), nullable=False),
    Column("omvang", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Every delivery attempt: what was called, how it ended, how long it took.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # ok | error | waiting
    Column("error", Text),
    Column("calls", Text),  # JSON list of call summaries
)

#: One row per scheduled job: who runs it now (lease) and when it last started (once per interval,
#: however many adapter processes share the database).
job_locks = Table(
    "job_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128)),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_started_at", DateTime(timezone=True)),
)

#: Every job run: start, end, what it found, what went wrong.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, index=True),
    Column("holder", String(128), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running | ok | error | skipped
    Column("found", Integer),
    Column("new", Integer),
    Column("errors", Integer),
    Column("detail", Text),
)

#: Every file seen in a postbox inbox (SFTP postbus, ``adapter/postbox``): one row per postbox and remote name.
#: ``state``: stored (in the file store, remote still in the inbox) | processed (moved to the processed
#: directory after its document was made) | refused (odd name, not a regular file; left where it is) |
#: expired (an orphan no message claimed in time; removed from the file store).
postbox_files = Table(
    "postbox_files",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("postbox", String(64), nullable=False),
    Column("remote_name", String(255), nullable=False),
    Column("aanvraagnummer", String(64)),
    Column("bestandsnaam", String(255)),
    Column("state", String(16), nullable=False),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("detail", Text),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("stored_at", DateTime(timezone=True)),
    Column("matched_at", DateTime(timezone=True)),  # a delivered message used it
    Column("processed_at", DateTime(timezone=True)),
    UniqueConstraint("postbox", "remote_name", name="uq_postbox_files_name"),
)
Index("ix_postbox_files_aanvraag", postbox_files.c.aanvraagnummer)

#: Per postbox: the last successful session and the last error (``postbox status``).
postbox_status = Table(
    "postbox_status",
    metadata,
    Column("postbox", String(64), primary_key=True),
    Column("last_success_at", DateTime(timezone=True)),
    Column("last_error_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, server_default="0"),
)

#: Files (and batch manifests) mirrored to a postbox's outbox (``adapter/postbox/mirror.py``): one row per
#: document identity and content per postbox (``ident``), so nothing is uploaded twice. ``state``: pending |
#: uploading | done | failed (``detail`` says why; tried again every run).
postbox_uploads = Table(
    "postbox_uploads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("postbox", String(64), nullable=False),
    Column("ident", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # file | manifest
    Column("batch", String(128)),
    Column("message_id", BigInteger),
    Column("remote_name", String(255), nullable=False),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("detail", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    UniqueConstraint("postbox", "ident", name="uq_postbox_uploads_ident"),
    UniqueConstraint("postbox", "remote_name", name="uq_postbox_uploads_name"),
)
Index("ix_postbox_uploads_state", postbox_uploads.c.state)
Index("ix_postbox_uploads_batch", postbox_uploads.c.batch)

#: Named accounts of the operators' console: role and an argon2id hash, never the password.
users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # operator | beheerder
    Column("password_hash", Text, nullable=False),
    #: wrong passwords in a row, and until when the account is locked after too many (migration 0012)
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Who did what to which object, when and why (console and CLI); apart from the message log and its retention.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200)),
    Column("reason", Text),
)

#: A logged-in browser of the console, keyed by the sha256 of its cookie's token: role, CSRF token, idle clock,
#: and the messages a beheerder unmasked in it (JSON list of ids; each unmask has a reason in ``audit_log``).
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_name", String(128), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("unmasked", Text),
)

#: An OpenID Connect login under way (``adapter.web.console.oidc``): its state (sha256), nonce and PKCE verifier,
#: taken (deleted) by the callback that finishes it, whichever adapter process that reaches.
console_logins = Table(
    "console_logins",
    metadata,
    Column("state", String(64), primary_key=True),
    Column("nonce", String(64), nullable=False),
    Column("verifier", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
