"""The adviesverzoek's ``postbus`` channel: the documents and a manifest dropped in the adviseur's postbox.

**Out** (``PostbusSender``, run by the delivery worker for a relay message). The checkpointed step
``advies:postbus`` resolves the adviesverzoek's documents (``adapter.advies.documenten``: bytes the adapter
received for the aanvraag, nothing fetched again) and queues them with ``adapter.postbox.mirror.drop_batch``
for the postbox of ``[adviseurs.NAME] postbox``, as batch ``<adviesverzoekId>``: each file as
``<adviesverzoekId>_<bestandsnaam>`` and, uploaded last, ``<adviesverzoekId>.manifest.json`` naming the
adviesverzoek, aanvraagnummer, zaak, adviseur (OIN, naam), omschrijving and einddatum, and per file its name,
size and sha256. The ``postbox-mirror`` job uploads them (temporary name, size and sha256 read back,
rename; resumed after a crash). Queuing is idempotent (one row per postbox, document and sha256): a retry,
also one after the checkpoint was lost, uploads nothing twice.

The relay then **waits** (``WaitingError`` ``postbus: …``, retried with backoff, never dead before the
einddatum) until the whole batch, manifest included, is in the outbox; the mirror job wakes it when the
manifest is uploaded. Only then is the adviesverzoek uitgezet (channel reference ``<postbox>/<batch>``): an
adviesverzoek never shows as sent while its files are not there. A failed upload (permission denied, a
name taken) is named in the wait and in ``postbox uploads``.

**Withdrawing** drops ``<adviesverzoekId>.ingetrokken.json`` (adviesverzoek, aanvraagnummer, ingetrokken)
in the same postbox, when anything of the adviesverzoek was queued there. The advice itself comes back
another way (an adviseur by postbus answers by mail or through the loket): there is no "in" half here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import Engine

from adapter.advies import store
from adapter.advies.documenten import resolve
from adapter.config import Settings
from adapter.errors import ConfigError, WaitingError
from adapter.postbox.mirror import DropFile, batch_state, drop_batch, safe_name
from adapter.store import uploads
from adapter.store.files import FileStore
from adapter.targets.base import Steps, run_step
from adapter.xmlsafe import Limits

CHANNEL = "postbus"
STEP = "advies:postbus"


def manifest_fields(av: store.Adviesverzoek, naam: str | None) -> dict[str, object]:
    """What the manifest says about the adviesverzoek (the mirror adds batch, postbox, created, files)."""
    return {
        "adviesverzoek": av.id,
        "aanvraagnummer": av.aanvraagnummer,
        "zaak": av.zaak,
        "adviseur": {"oin": av.adviseur_oin, "naam": naam},
        "omschrijving": av.omschrijving,
        "einddatum": av.einddatum.isoformat(),
    }


@dataclass
class PostbusSender:
    """What ``AdviesRelay.senders["postbus"]`` calls."""

    engine: Engine
    settings: Settings
    files: FileStore
    limits: Limits

    def _postbox(self, av: store.Adviesverzoek) -> tuple[str, str | None]:
        adviseur = self.settings.adviseurs.get(av.adviseur)
        if adviseur is None or adviseur.channel != CHANNEL or adviseur.postbox not in self.settings.postboxes:
            raise ConfigError(
                f"adviesverzoek {av.id}: adviseur {av.adviseur} has no postbus channel with a configured postbox "
                f'here ([adviseurs.{av.adviseur}] channel = "postbus", postbox = "NAME")'
            )
        assert adviseur.postbox is not None
        return adviseur.postbox, adviseur.naam

    def __call__(self, av: store.Adviesverzoek, steps: Steps) -> str:
        setattr(steps, "target", "postbus")  # noqa: B010 - DbSteps records it as the delivery's target
        postbox, naam = self._postbox(av)
        batch = safe_name(av.id)

        def drop() -> dict[str, object]:
            documents = []
            for doc in av.documents:
                stuk = resolve(self.engine, self.files, self.limits, av.aanvraagnummer, doc)
                name = f"{batch}_{stuk.bestandsnaam}"
                documents.append(DropFile(name=name, path=stuk.path, ident=f"advies:{av.id}:{doc}"))
            steps.called(f"postbus: {postbox} outbox ← {len(documents)} document(en) + manifest ({batch})")
            rows = drop_batch(self.engine, self.files, postbox, batch, documents, meta=manifest_fields(av, naam))
            return {"postbox": postbox, "batch": batch, "files": [r.remote_name for r in rows]}

        dropped = run_step(steps, STEP, drop)
        state = batch_state(self.engine, postbox, batch)
        if state != "done":
            raise WaitingError(
                f"postbus: waiting for postbox-mirror to upload adviesverzoek {av.id} to {postbox} "
                f"({len(dropped['files'])} file(s), manifest last): {state}",  # type: ignore[arg-type]
                until=datetime.combine(av.einddatum, time.max, tzinfo=UTC),
            )
        store.mark_uitgezet(self.engine, av.id, f"{postbox}/{batch}")
        return (
            f"adviesverzoek {av.id} uitgezet bij {av.adviseur} ({av.adviseur_oin}) via postbus {postbox}: "
            f"{len(av.documents)} document(en) and {batch}.manifest.json in its outbox"
        )

    def intrekken(self, av: store.Adviesverzoek, steps: Steps) -> str:
        setattr(steps, "target", "postbus")  # noqa: B010
        postbox, _ = self._postbox(av)
        batch = safe_name(f"{av.id}-ingetrokken")
        if not uploads.batch_rows(self.engine, postbox, safe_name(av.id)):
            run_step(steps, "intrekken:postbus", lambda: {})
            return f"adviesverzoek {av.id} ingetrokken before anything was queued for postbox {postbox}; nothing sent"

        def drop() -> dict[str, object]:
            current = store.get(self.engine, av.id) or av
            when = current.ingetrokken_at or datetime.now(UTC)
            body = {"adviesverzoek": av.id, "aanvraagnummer": av.aanvraagnummer, "ingetrokken": when.isoformat()}
            data = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()
            steps.called(f"postbus: {postbox} outbox ← {av.id}.ingetrokken.json")
            notice = DropFile(f"{av.id}.ingetrokken.json", data=data)
            drop_batch(self.engine, self.files, postbox, batch, [notice], manifest=False)
            return {"postbox": postbox, "batch": batch}

        run_step(steps, "intrekken:postbus", drop)
        return f"adviesverzoek {av.id} ingetrokken; {av.id}.ingetrokken.json queued for postbox {postbox}"
