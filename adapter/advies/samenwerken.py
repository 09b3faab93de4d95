"""The adviesverzoek's ``samenwerken`` channel (DSO era): out as an actieverzoek, the advice back in as a
notification. The HTTP and every reconstructed detail are in ``adapter.loket.samenwerken``.

**Out** (``SamenwerkenSender``, run by the delivery worker for a relay message, checkpointed):
``samenwerken:samenwerking`` (one samenwerking per adviesverzoek on the aanvraag's verzoeknummer, our
adviesverzoekId as its ``kenmerk``), ``samenwerken:document:<id>`` per document (uploaded from the file
store; see ``adapter.advies.documenten``), ``samenwerken:actieverzoek`` (type advies to the adviseur's OIN,
kenmerk again). A retry after a lost answer looks for what the unanswered call may have made — the
samenwerking and the actieverzoek by our kenmerk, a document by name and sha256 — never by list order.
Then the adviesverzoek records ``<samenwerkingId>/<actieverzoekId>`` as its channel reference. Withdrawing
patches the actieverzoek to ``INGETROKKEN``.

**In** (``samenwerken-poll`` job, then ``read_advies`` in the delivery): each notification is stored as an
inbound message (channel ``samenwerken``, duplicate key the notificatieId, ``nummer`` the aanvraag of its
adviesverzoek, ``crossRefnummer`` our adviesverzoekId) through ``adapter.store.messages.accept``, and
acknowledged at the server only after that commit. Its delivery reads the actieverzoek (strekking,
toelichting, afgerondOp) and downloads the advice documents into the file store (each a checkpoint), and
hands a ``Verzoek`` of soort ``advies`` to the usual path: the advice documents go onto the zaak of the
aanvraag, and the adviesverzoek becomes ``gereed`` with its strekking (``AdviesRelay``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, select

from adapter.advies import store
from adapter.advies.documenten import Stuk, resolve
from adapter.config import Settings
from adapter.errors import InputError
from adapter.logs import get_logger
from adapter.loket import samenwerken as sw
from adapter.model import Advies, Bijlage, Organisatie, Soort, Verzoek
from adapter.store.db import reading
from adapter.store.files import FileStore
from adapter.store.messages import InboundRecord, StoredMessage
from adapter.targets.base import Steps, run_step
from adapter.xmlsafe import Limits

log = get_logger("adapter.advies.samenwerken")

CHANNEL = "samenwerken"


def dedup_key(notificatie_id: str) -> str:
    return f"{CHANNEL}|{notificatie_id}"


def channel_ref(sid: str, aid: str) -> str:
    return f"{sid}/{aid}"


@dataclass
class SamenwerkenSender:
    """What ``AdviesRelay.senders["samenwerken"]`` calls."""

    engine: Engine
    settings: Settings
    client: sw.SamenwerkenClient
    files: FileStore
    limits: Limits

    def __call__(self, av: store.Adviesverzoek, steps: Steps) -> str:
        c = self.client
        setattr(steps, "target", "samenwerken")  # noqa: B010 - DbSteps records it as the delivery's target
        titel = f"Advies {av.aanvraagnummer}: {av.omschrijving}"

        def start() -> dict[str, str]:
            steps.called(f"samenwerken: POST /samenwerkingen {av.aanvraagnummer} (kenmerk {av.id})")
            return {"samenwerkingId": c.start_samenwerking(av.aanvraagnummer, titel, av.id)}

        def find_samenwerking() -> dict[str, str] | None:
            found = c.find_samenwerking(av.aanvraagnummer, av.id)
            return {"samenwerkingId": found} if found else None

        sid = run_step(steps, "samenwerken:samenwerking", start, find_samenwerking)["samenwerkingId"]
        document_ids = []
        for doc in av.documents:
            stuk = resolve(self.engine, self.files, self.limits, av.aanvraagnummer, doc)

            def upload(stuk: Stuk = stuk) -> dict[str, str]:
                steps.called(f"samenwerken: POST documenten {stuk.bestandsnaam} ({stuk.size} bytes)")
                return {"documentId": c.upload_document(sid, stuk.bestandsnaam, stuk.path, stuk.mime_type)}

            def find_document(stuk: Stuk = stuk) -> dict[str, str] | None:
                found = c.find_document(sid, stuk.bestandsnaam, stuk.sha256)
                return {"documentId": found} if found else None

            document_ids.append(run_step(steps, f"samenwerken:document:{doc}", upload, find_document)["documentId"])

        def put_out() -> dict[str, str]:
            steps.called(f"samenwerken: POST actieverzoeken advies → {av.adviseur_oin} (kenmerk {av.id})")
            aid = c.put_out_actieverzoek(sid, av.id, av.adviseur_oin, av.omschrijving, av.einddatum, document_ids)
            return {"actieverzoekId": aid}

        def find_actieverzoek() -> dict[str, str] | None:
            found = c.find_actieverzoek(sid, av.id)
            return {"actieverzoekId": found} if found else None

        aid = run_step(steps, "samenwerken:actieverzoek", put_out, find_actieverzoek)["actieverzoekId"]
        store.mark_uitgezet(self.engine, av.id, channel_ref(sid, aid))
        return (
            f"adviesverzoek {av.id} uitgezet bij {av.adviseur} ({av.adviseur_oin}) via samenwerken: samenwerking "
            f"{sid}, actieverzoek {aid}, {len(document_ids)} document(en)"
        )

    def intrekken(self, av: store.Adviesverzoek, steps: Steps) -> str:
        setattr(steps, "target", "samenwerken")  # noqa: B010
        current = store.get(self.engine, av.id) or av
        if not current.channel_ref:
            run_step(steps, "intrekken:samenwerken", lambda: {})
            return f"adviesverzoek {av.id} ingetrokken before its actieverzoek was put out; nothing to withdraw"
        sid, _, aid = current.channel_ref.partition("/")

        def patch() -> dict[str, str]:
            steps.called(f"samenwerken: PATCH actieverzoek {aid} INGETROKKEN")
            return {"status": self.client.intrekken(sid, aid)}

        done = run_step(steps, "intrekken:samenwerken", patch)
        return f"adviesverzoek {av.id} ingetrokken; actieverzoek {aid} at samenwerken {done['status']}"


# -- in ---------------------------------------------------------------------------------------------------


def adviesverzoek_of(engine: Engine, client: sw.SamenwerkenClient, n: sw.Notificatie) -> store.Adviesverzoek | None:
    """The adviesverzoek a notification is about: by our channel reference, else by the kenmerk on its
    actieverzoek (the relay may have stopped between the actieverzoek and recording it)."""
    ref = channel_ref(n["samenwerkingId"], n["actieverzoekId"])
    with reading(engine) as conn:
        c = store.adviesverzoeken.c
        av_id = conn.execute(select(c.id).where(c.channel_ref == ref)).scalar()
    if av_id is None:
        av_id = client.actieverzoek(n["samenwerkingId"], n["actieverzoekId"]).get("kenmerk")
    return store.get(engine, str(av_id)) if av_id else None


def record_for(n: sw.Notificatie, av: store.Adviesverzoek | None, correlation_id: str) -> InboundRecord:
    body = sw.notificatie_body(n)
    return InboundRecord(
        correlation_id=correlation_id,
        channel=CHANNEL,
        message_type=n["type"].lower().replace("_", "-")[:64],
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        referentienummer=n["notificatieId"],
        cross_refnummer=av.id if av else None,
        nummer=av.aanvraagnummer if av else None,
        dedup_key=dedup_key(n["notificatieId"]),
    )


def read_advies(
    engine: Engine,
    client: sw.SamenwerkenClient,
    own_oin: str,
    row: StoredMessage,
    steps: Steps,
    namen: Mapping[str, str] | None = None,
) -> Verzoek:
    """The advice of a stored ACTIEVERZOEK_GEREED notification as a ``Verzoek`` (soort advies). The adviseur
    is named as ``namen`` (``[adviseurs.NAME]`` → its naam) says, else by its NAME: with the strekking it
    goes onto the advice document (``Advies.beschrijving``)."""
    n = sw.read_notificatie(json.loads(row.body))
    if n["type"] != sw.ACTIEVERZOEK_GEREED:
        raise InputError(f"samenwerken notificatie {n['notificatieId']} of type {n['type']}: nothing to deliver")
    av = store.get(engine, row.cross_refnummer or "") or adviesverzoek_of(engine, client, n)
    if av is None:
        raise InputError(
            f"samenwerken notificatie {n['notificatieId']}: actieverzoek {n['actieverzoekId']} is not one of our "
            "adviesverzoeken (no channel reference or kenmerk of ours)"
        )
    sid, aid = n["samenwerkingId"], n["actieverzoekId"]
    setattr(steps, "target", "samenwerken")  # noqa: B010 - until the zaak's target takes over

    def read_actieverzoek() -> dict[str, object]:
        steps.called(f"samenwerken: GET actieverzoek {aid}")
        return dict(client.actieverzoek(sid, aid))

    a = run_step(steps, "samenwerken:advies", read_actieverzoek)
    if a.get("status") != sw.GEREED:
        raise InputError(f"actieverzoek {aid} is {a.get('status')}, not {sw.GEREED}: no advice to deliver")
    listed: dict[str, sw.Document] | None = None
    bijlagen = []
    for i, did in enumerate(n["documentIds"], 1):

        def fetch(did: str = did) -> dict[str, object]:
            nonlocal listed
            if listed is None:
                listed = {d["documentId"]: d for d in client.documenten(sid)}
            if did not in listed:
                raise InputError(f"samenwerking {sid} lists no document {did} (named by the notification)")
            doc = listed[did]
            steps.called(f"samenwerken: GET document {did}")
            path = client.download(sid, doc)
            naam = doc["bestandsnaam"]
            return {"bestand": str(path), "grootte": doc["grootte"], "sha256": doc["sha256"], "bestandsnaam": naam}

        got = run_step(steps, f"samenwerken:document:{did}", fetch)
        bijlagen.append(
            Bijlage(
                id=f"{av.id}-A{i}",
                bestandsnaam=str(got["bestandsnaam"]),
                documenttype="Advies",
                bestand=str(got["bestand"]),
                grootte=int(str(got["grootte"])),
                sha256=str(got["sha256"]),
            )
        )
    afgerond = _datum(a.get("afgerondOp"))
    strekking = str(a["strekking"]) if a.get("strekking") else None
    adviseur = Organisatie(av.adviseur_oin, (namen or {}).get(av.adviseur) or av.adviseur or None)
    ons = Organisatie(own_oin)
    return Verzoek(
        bron=CHANNEL,
        bericht=sw.ACTIEVERZOEK_GEREED,
        soort=Soort.ADVIES,
        nummer=av.aanvraagnummer,
        bevoegd_gezag=ons,
        ontvanger=ons,
        referentie=n["notificatieId"],
        datum=afgerond,
        toelichting=str(a["toelichting"]) if a.get("toelichting") else None,
        bijlagen=tuple(bijlagen),
        advies=Advies(adviesverzoek_id=av.id, adviseur=adviseur, datum=afgerond, strekking=strekking),
    )


def _datum(value: object) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
