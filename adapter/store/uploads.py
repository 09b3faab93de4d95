"""Uploads to postboxes (``postbox_uploads``): the few queries ``adapter.postbox.mirror`` needs.

One row per file (or batch manifest) per postbox, keyed by ``ident`` (document identity and sha256, or
``manifest:<batch>``): planning the same document twice finds the row and adds nothing. The remote name
is unique per postbox too, so two different files never land under one name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy import exc as sa_exc

from adapter.store.db import aware, reading, transaction
from adapter.store.outbox import now
from adapter.store.tables import delivery_steps, postbox_files, postbox_uploads, zaak_links

PENDING, UPLOADING, DONE, FAILED = "pending", "uploading", "done", "failed"
FILE, MANIFEST = "file", "manifest"


@dataclass(frozen=True)
class Upload:
    id: int
    postbox: str
    ident: str
    kind: str
    batch: str | None
    message_id: int | None
    remote_name: str
    sha256: str | None
    size: int | None
    state: str
    attempts: int
    detail: str | None
    created_at: datetime
    done_at: datetime | None


def _row(r: Any) -> Upload:
    return Upload(
        int(r.id),
        r.postbox,
        r.ident,
        r.kind,
        r.batch,
        r.message_id,
        r.remote_name,
        r.sha256,
        r.size,
        r.state,
        int(r.attempts),
        r.detail,
        aware(r.created_at) or now(),
        aware(r.done_at),
    )


def by_ident(engine: Engine, postbox: str, ident: str) -> Upload | None:
    with reading(engine) as conn:
        r = conn.execute(
            select(postbox_uploads).where(postbox_uploads.c.postbox == postbox, postbox_uploads.c.ident == ident)
        ).first()
    return _row(r) if r else None


def name_taken(engine: Engine, postbox: str, remote_name: str) -> bool:
    with reading(engine) as conn:
        return (
            conn.execute(
                select(postbox_uploads.c.id).where(
                    postbox_uploads.c.postbox == postbox, postbox_uploads.c.remote_name == remote_name
                )
            ).first()
            is not None
        )


def add(
    engine: Engine,
    *,
    postbox: str,
    ident: str,
    kind: str,
    batch: str | None,
    message_id: int | None,
    remote_name: str,
    sha256: str | None,
    size: int | None,
) -> Upload | None:
    """Insert a pending upload; None when the ident or the remote name is taken (a concurrent plan)."""
    t = now()
    try:
        with transaction(engine) as conn:
            conn.execute(
                insert(postbox_uploads).values(
                    postbox=postbox,
                    ident=ident,
                    kind=kind,
                    batch=batch,
                    message_id=message_id,
                    remote_name=remote_name,
                    sha256=sha256,
                    size=size,
                    state=PENDING,
                    attempts=0,
                    created_at=t,
                    updated_at=t,
                )
            )
    except sa_exc.IntegrityError:
        return None
    return by_ident(engine, postbox, ident)


def get(engine: Engine, upload_id: int) -> Upload | None:
    with reading(engine) as conn:
        r = conn.execute(select(postbox_uploads).where(postbox_uploads.c.id == upload_id)).first()
    return _row(r) if r else None


def to_do(engine: Engine, postbox: str) -> list[Upload]:
    """Uploads not done yet, oldest first: pending, interrupted (uploading) and failed ones alike."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(postbox_uploads)
            .where(postbox_uploads.c.postbox == postbox, postbox_uploads.c.state != DONE)
            .order_by(postbox_uploads.c.id)
        )
        return [_row(r) for r in rows]


def batch_rows(engine: Engine, postbox: str, batch: str) -> list[Upload]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(postbox_uploads)
            .where(postbox_uploads.c.postbox == postbox, postbox_uploads.c.batch == batch)
            .order_by(postbox_uploads.c.id)
        )
        return [_row(r) for r in rows]


def list_uploads(engine: Engine, state: str | None, limit: int) -> list[Upload]:
    q = select(postbox_uploads).order_by(postbox_uploads.c.id.desc()).limit(limit)
    if state:
        q = q.where(postbox_uploads.c.state == state)
    with reading(engine) as conn:
        return [_row(r) for r in conn.execute(q)]


def counts(engine: Engine) -> dict[str, dict[str, int]]:
    """Per postbox: how many uploads are in each state."""
    out: dict[str, dict[str, int]] = {}
    with reading(engine) as conn:
        for postbox, state, n in conn.execute(
            select(postbox_uploads.c.postbox, postbox_uploads.c.state, func.count()).group_by(
                postbox_uploads.c.postbox, postbox_uploads.c.state
            )
        ):
            out.setdefault(postbox, {})[state] = int(n)
    return out


def set_content(engine: Engine, upload_id: int, sha256: str, size: int) -> None:
    """A manifest's content, once its batch's files are done (built then, from them)."""
    with transaction(engine) as conn:
        conn.execute(
            update(postbox_uploads)
            .where(postbox_uploads.c.id == upload_id, postbox_uploads.c.state != DONE)
            .values(sha256=sha256, size=size, updated_at=now())
        )


def mark(engine: Engine, upload_id: int, state: str, detail: str | None = None, *, attempt: bool = False) -> None:
    t = now()
    values: dict[str, Any] = {"state": state, "detail": detail, "updated_at": t}
    if attempt:
        values["attempts"] = postbox_uploads.c.attempts + 1
    if state == DONE:
        values["done_at"] = t
    with transaction(engine) as conn:
        conn.execute(update(postbox_uploads).where(postbox_uploads.c.id == upload_id).values(**values))


def zaaktypen(engine: Engine, target: str, nummer: str) -> set[str]:
    """The zaaktypen of the zaken a delivery made (or found) for this verzoeknummer at this target."""
    with reading(engine) as conn:
        return {
            str(r[0])
            for r in conn.execute(
                select(zaak_links.c.zaaktype).where(zaak_links.c.target == target, zaak_links.c.nummer == nummer)
            )
        }


def sha_needed(engine: Engine, sha256: str, but: int) -> bool:
    """Something other than upload ``but`` still needs this content in the file store: a postbus file, a
    delivery checkpoint (werkmap, postbus) or an upload not done yet."""
    with reading(engine) as conn:
        upload = conn.execute(
            select(postbox_uploads.c.id).where(
                postbox_uploads.c.sha256 == sha256, postbox_uploads.c.id != but, postbox_uploads.c.state != DONE
            )
        ).first()
        postbus = conn.execute(select(postbox_files.c.id).where(postbox_files.c.sha256 == sha256)).first()
        step = conn.execute(select(delivery_steps.c.key).where(delivery_steps.c.result.like(f"%{sha256}%"))).first()
    return upload is not None or postbus is not None or step is not None
