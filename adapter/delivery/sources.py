"""From a stored message to the canonical ``Verzoek``, per channel.

StUF-LVO carries the whole aanvraag in the message. A STAM notification only names the verzoek: it is
fetched from the werkmap here, as checkpointed steps of the delivery (referenties once, each document and
the verzoek's own PDF streamed once into the content-addressed file store), so a retry after a crash
refetches nothing that completed. A notification is a hint, not the truth: when the werkmap refuses the
verzoek it names (403/404 on the referenties) the delivery ends as ``HintNotConfirmed`` (``hint-refused``,
see ``adapter.store.messages``), never holding up the real verzoek. The STAM verzoek is read laxly: what
departs from our reconstructed schema comes back as warnings (stored on the message by the worker), and
only a verzoek without what the delivery needs is refused (``InputError``, permanent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypedDict, TypeVar, cast

from adapter.errors import AdapterError, ConfigError, HintNotConfirmed, InputError, TargetRefused
from adapter.loket import stam
from adapter.loket.lvo_parse import parse_verzoek
from adapter.loket.stam_parse import parse_stam_verzoek, read_stam_verzoek, with_pdf
from adapter.loket.werkmap import WerkmapClient
from adapter.model import Verzoek
from adapter.postbox.bijlagen import PostbusLookup
from adapter.store.messages import StoredMessage
from adapter.targets.base import Result, Steps, run_step
from adapter.xmlsafe import Limits, parse

_SOAP_BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"

R = TypeVar("R", bound=Mapping[str, Any])


class StoredDocument(TypedDict):
    """Result of the step ``werkmap:document:<documentId>``: the file in the content-addressed store."""

    bestand: str  # path
    grootte: int
    sha256: str


def _checkpointed(steps: Steps, key: str, create: Callable[[], R]) -> R:
    """``run_step`` with a typed result: a checkpoint is kept as a JSON object and read back as ``R``."""
    return cast(R, run_step(steps, key, lambda: cast(Result, create())))


class StoredPdf(StoredDocument):
    """Result of the step ``werkmap:pdf``: the verzoek's own PDF in the file store, and its file name."""

    bestandsnaam: str | None


def _fetch_document(werkmap: WerkmapClient, doc: stam.WerkmapDocument) -> StoredDocument:
    return {"bestand": str(werkmap.download(doc)), "grootte": doc["grootte"], "sha256": doc["sha256"]}


def _fetch_pdf(werkmap: WerkmapClient, refs: stam.VerzoekReferenties) -> StoredPdf:
    got = werkmap.verzoek_pdf(refs)
    assert got is not None  # the step runs only when the referenties link a PDF
    return {"bestand": str(got.path), "grootte": got.grootte, "sha256": got.sha256, "bestandsnaam": got.bestandsnaam}


#: What the werkmap answers for a verzoek that is not there, or not ours to fetch.
HINT_REFUSED_STATUSES = frozenset({403, 404})


def _referenties(werkmap: WerkmapClient, n: stam.Notificatie, steps: Steps) -> stam.VerzoekReferenties:
    """The referenties of the notified verzoek version: the werkmap's confirmation that it exists for us.
    Only this first call can refuse the hint; a 403/404 later on (a document) is the werkmap's own fault."""
    try:
        return _checkpointed(steps, "werkmap:referenties", lambda: werkmap.referenties(n.verzoeknummer, n.volgnummer))
    except TargetRefused as exc:
        if exc.status not in HINT_REFUSED_STATUSES:
            raise
        raise HintNotConfirmed(
            f"the werkmap does not confirm verzoek {n.verzoeknummer} volgnummer {n.volgnummer} ({exc}): this "
            "notification is kept as a refused hint and holds no duplicate key; the next notification or "
            "werkmap-poll hit of the verzoek delivers it",
            exc.status,
        ) from None


@dataclass(frozen=True)
class Sourced:
    """A stored message read as a verzoek. ``warnings``: what reading it noticed (element names and lines,
    never content), to store on the message; None when the source does not judge (StUF-LVO: the inbound
    channel already did, and what it stored stays)."""

    verzoek: Verzoek
    warnings: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Sources:
    """What it takes to turn messages into verzoeken: the werkmap (for STAM) and our own OINs."""

    werkmap: WerkmapClient | None
    own_oins: frozenset[str]
    #: Stored and fetched XML is parsed again here under the intake's limits, never without them.
    limits: Limits = field(default_factory=Limits)
    #: With postboxes configured: bijlagen without inhoud get their postbus file, or the delivery waits.
    postbus: PostbusLookup | None = None
    #: Channels read elsewhere (``samenwerken``: an advice notification, ``adapter.advies.samenwerken``).
    others: Mapping[str, Callable[[StoredMessage, Steps], Verzoek]] = field(default_factory=dict)

    def verzoek_for(self, stored: StoredMessage, steps: Steps) -> Sourced:
        """The verzoek of a stored message; a message that cannot be read is an ``InputError`` (permanent)."""
        try:
            return self._verzoek_for(stored, steps)
        except (ValueError, KeyError, StopIteration) as exc:
            if isinstance(exc, AdapterError):
                raise
            why = f"{type(exc).__name__}: {exc}"
            raise InputError(f"the {stored.channel} message cannot be read as a verzoek: {why}") from exc

    def _verzoek_for(self, stored: StoredMessage, steps: Steps) -> Sourced:
        if stored.channel == "stuf-lvo":
            envelope = parse(stored.body, self.limits)
            body = envelope.find(_SOAP_BODY)
            assert body is not None
            message = next(c for c in body if isinstance(c.tag, str))
            ontvanger = (stored.ontvanger or "").split("/")[0] or None
            verzoek = parse_verzoek(message, ontvanger)
            if self.postbus is not None:
                verzoek = self.postbus.fill(verzoek, stored.received_at, steps)
            return Sourced(verzoek)
        if stored.channel == "stam":
            return self._from_werkmap(stored, steps)
        if stored.channel in self.others:
            return Sourced(self.others[stored.channel](stored, steps))
        raise InputError(f"no verzoek source for channel {stored.channel!r}")

    def _from_werkmap(self, stored: StoredMessage, steps: Steps) -> Sourced:
        if self.werkmap is None:
            raise ConfigError("a STAM verzoek needs the werkmap: configure [werkmap]")
        werkmap = self.werkmap
        n = stam.read_notificatie(parse(stored.body, self.limits))
        refs = _referenties(werkmap, n, steps)
        xml = werkmap.verzoek_xml(refs)
        root = parse(xml, self.limits)
        read = read_stam_verzoek(root, set(self.own_oins))  # before any download: refuse early
        if (read.verzoek.nummer, read.verzoek.volgnummer) != n.sleutel:
            raise InputError(
                f"the werkmap answered with verzoek {read.verzoek.nummer} volgnummer {read.verzoek.volgnummer} "
                f"for the notification of verzoek {n.verzoeknummer} volgnummer {n.volgnummer}"
            )
        bestanden: dict[str, tuple[str, int, str]] = {}
        for doc in refs.get("documenten", []):
            key = f"werkmap:document:{doc['documentId']}"
            got = _checkpointed(steps, key, partial(_fetch_document, werkmap, doc))
            bestanden[doc["documentId"]] = (got["bestand"], int(got["grootte"]), got["sha256"])
        pdf = None
        link = refs.get("pdf")
        if link and link.get("href"):  # optional in the contract: without it there is nothing to add
            pdf = _checkpointed(steps, "werkmap:pdf", partial(_fetch_pdf, werkmap, refs))
        verzoek = parse_stam_verzoek(root, set(self.own_oins), bestanden)
        if pdf is not None:
            verzoek = with_pdf(verzoek, (pdf["bestand"], int(pdf["grootte"]), pdf["sha256"]), pdf["bestandsnaam"])
        return Sourced(verzoek, read.warnings)
