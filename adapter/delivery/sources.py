"""From a stored message to the canonical ``Verzoek``, per channel.

StUF-LVO carries the whole aanvraag in the message. A STAM notification only names the verzoek: it is
fetched from the werkmap here, as checkpointed steps of the delivery (referenties once, each document
streamed once into the content-addressed file store), so a retry after a crash refetches nothing that
completed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypedDict, TypeVar, cast

from lxml import etree

from adapter.errors import AdapterError, ConfigError, InputError
from adapter.loket import stam
from adapter.loket.lvo_parse import parse_verzoek
from adapter.loket.stam_parse import parse_stam_verzoek
from adapter.loket.werkmap import WerkmapClient
from adapter.model import Verzoek
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


def _fetch_document(werkmap: WerkmapClient, doc: stam.WerkmapDocument) -> StoredDocument:
    return {"bestand": str(werkmap.download(doc)), "grootte": doc["grootte"], "sha256": doc["sha256"]}


@dataclass(frozen=True)
class Sources:
    """What it takes to turn messages into verzoeken: the werkmap (for STAM) and our own OINs."""

    werkmap: WerkmapClient | None
    own_oins: frozenset[str]

    def verzoek_for(self, stored: StoredMessage, steps: Steps) -> Verzoek:
        """The verzoek of a stored message; a message that cannot be read is an ``InputError`` (permanent)."""
        try:
            return self._verzoek_for(stored, steps)
        except (ValueError, KeyError, StopIteration) as exc:
            if isinstance(exc, AdapterError):
                raise
            why = f"{type(exc).__name__}: {exc}"
            raise InputError(f"the {stored.channel} message cannot be read as a verzoek: {why}") from exc

    def _verzoek_for(self, stored: StoredMessage, steps: Steps) -> Verzoek:
        if stored.channel == "stuf-lvo":
            envelope = parse(stored.body, Limits(max_bytes=2**31))
            body = envelope.find(_SOAP_BODY)
            assert body is not None
            message = next(c for c in body if isinstance(c.tag, str))
            ontvanger = (stored.ontvanger or "").split("/")[0] or None
            return parse_verzoek(message, ontvanger)
        if stored.channel == "stam":
            return self._from_werkmap(stored, steps)
        raise InputError(f"no verzoek source for channel {stored.channel!r}")

    def _from_werkmap(self, stored: StoredMessage, steps: Steps) -> Verzoek:
        if self.werkmap is None:
            raise ConfigError("a STAM verzoek needs the werkmap: configure [werkmap]")
        werkmap = self.werkmap
        n = stam.read_notificatie(parse(stored.body, Limits(max_bytes=2**24)))
        refs = _checkpointed(steps, "werkmap:referenties", lambda: werkmap.referenties(n.verzoeknummer, n.volgnummer))
        xml = werkmap.verzoek_xml(refs)
        bestanden: dict[str, tuple[str, int, str]] = {}
        for doc in refs.get("documenten", []):
            key = f"werkmap:document:{doc['documentId']}"
            got = _checkpointed(steps, key, partial(_fetch_document, werkmap, doc))
            bestanden[doc["documentId"]] = (got["bestand"], int(got["grootte"]), got["sha256"])
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
        return parse_stam_verzoek(root, set(self.own_oins), bestanden)
