"""The bytes of an adviesverzoek's documents, for the channels that carry files (samenwerken, postbus).

A document of an adviesverzoek names a document the adapter **received for its aanvraag**: a StUF-LVO
``bijlageId`` (inline ``inhoud``, or the postbus file its delivery took, step ``postbus:<bijlageId>``) or a
werkmap ``documentId`` of a STAM verzoek (downloaded by its delivery, step ``werkmap:referenties``). Its
bytes are then in the message store or the content-addressed file store; nothing is fetched again. A
document we never received (or whose bytes retention removed) is an ``InputError`` naming it: the relay
stops as needs-attention rather than send an adviesverzoek without it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from sqlalchemy import Engine, select

from adapter.errors import InputError
from adapter.loket.lvo import INCOMING, LVO
from adapter.store import postbox as postbox_store
from adapter.store.db import reading
from adapter.store.files import FileStore
from adapter.store.tables import deliveries, delivery_steps, messages
from adapter.xmlsafe import Limits, parse

_L = f"{{{LVO}}}"


@dataclass(frozen=True)
class Stuk:
    """One document to send: its id (as the adviesverzoek names it), file name and bytes in the file store."""

    id: str
    bestandsnaam: str
    path: Path
    sha256: str
    size: int
    mime_type: str | None


def _store_bytes(files: FileStore, data: bytes) -> tuple[Path, str]:
    sha = hashlib.sha256(data).hexdigest()
    if not files.has(sha, len(data)):
        with files.writer(sha, len(data), resume=False) as w:
            w.write(data)
            w.commit()
    return files.path_for(sha), sha


def _step(engine: Engine, message_id: int, key: str) -> dict[str, object] | None:
    q = (
        select(delivery_steps.c.result)
        .join(deliveries, deliveries.c.id == delivery_steps.c.delivery_id)
        .where(deliveries.c.message_id == message_id, delivery_steps.c.key == key, delivery_steps.c.state == "done")
    )
    with reading(engine) as conn:
        raw = conn.execute(q).scalar()
    return dict(json.loads(raw)) if raw else None


def resolve(engine: Engine, files: FileStore, limits: Limits, aanvraagnummer: str, doc_id: str) -> Stuk:
    """The document ``doc_id`` of aanvraag ``aanvraagnummer`` (newest message that holds it first)."""
    types = [name for name, b in INCOMING.items() if b.soort in ("aanvraag", "conceptverzoek", "aanvulling")]
    q = (
        select(messages.c.id, messages.c.channel, messages.c.body)
        .where(messages.c.nummer == aanvraagnummer, messages.c.dedup_key.is_not(None))
        .where(messages.c.channel.in_(["stuf-lvo", "stam"]))
        .order_by(messages.c.id.desc())
    )
    with reading(engine) as conn:
        rows = list(conn.execute(q))
    for row in rows:
        if row.channel == "stuf-lvo":
            found = _from_lvo(engine, files, limits, row.id, bytes(row.body or b""), doc_id, types)
        else:
            found = _from_werkmap(engine, files, row.id, doc_id)
        if found is not None:
            return found
    raise InputError(
        f"document {doc_id!r}: not a bijlage or werkmap document the adapter received for aanvraag {aanvraagnummer} "
        "(or its bytes are gone); name one that was, or send it another way"
    )


def _from_lvo(
    engine: Engine, files: FileStore, limits: Limits, message_id: int, body: bytes, doc_id: str, types: list[str]
) -> Stuk | None:
    if not body:
        return None  # purged (retention)
    root = parse(body, limits)
    message = next((el for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname in types), None)
    if message is None:
        return None
    for b in message.iter(f"{_L}bijlage"):
        if (b.findtext(f"{_L}bijlageId") or "").strip() != doc_id:
            continue
        naam = (b.findtext(f"{_L}bestandsnaam") or doc_id).strip()
        mime = (b.findtext(f"{_L}mimeType") or "").strip() or None
        inhoud = (b.findtext(f"{_L}inhoud") or "").strip()
        if inhoud:
            path, sha = _store_bytes(files, base64.b64decode(inhoud))
            return Stuk(doc_id, naam, path, sha, path.stat().st_size, mime)
        got = _step(engine, message_id, f"{postbox_store.STEP_PREFIX}{doc_id}")
        if got is not None and files.has(str(got["sha256"])):
            sha = str(got["sha256"])
            return Stuk(doc_id, naam, files.path_for(sha), sha, int(str(got["grootte"])), mime)
    return None


def _from_werkmap(engine: Engine, files: FileStore, message_id: int, doc_id: str) -> Stuk | None:
    refs = _step(engine, message_id, "werkmap:referenties")
    documenten = refs.get("documenten") if refs else None
    for d in documenten if isinstance(documenten, list) else []:
        if isinstance(d, dict) and d.get("documentId") == doc_id:
            sha = str(d.get("sha256", "")).lower()
            if files.has(sha):
                naam = str(d.get("bestandsnaam") or doc_id)
                return Stuk(doc_id, naam, files.path_for(sha), sha, int(d.get("grootte") or 0), None)
    return None
