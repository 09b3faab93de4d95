"""From a stored message to the canonical ``Verzoek``, per channel.

StUF-LVO carries the whole aanvraag in the message. A STAM notification only names the verzoek: it is
fetched from the werkmap here, as checkpointed steps of the delivery (referenties once, each document
streamed once into the content-addressed file store), so a retry after a crash refetches nothing that
completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from adapter.errors import AdapterError, ConfigError, InputError
from adapter.loket import stam
from adapter.loket.lvo_parse import parse_verzoek
from adapter.loket.stam_parse import parse_stam_verzoek
from adapter.loket.werkmap import WerkmapClient
from adapter.model import Verzoek
from adapter.targets.base import Steps, run_step
from adapter.xmlsafe import Limits, parse

_SOAP_BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"


@dataclass(frozen=True)
class Sources:
    """What it takes to turn messages into verzoeken: the werkmap (for STAM) and our own OINs."""

    werkmap: WerkmapClient | None
    own_oins: frozenset[str]

    def verzoek_for(self, row: Any, steps: Steps) -> Verzoek:
        """The verzoek of a stored message; a message that cannot be read is an ``InputError`` (permanent)."""
        try:
            return self._verzoek_for(row, steps)
        except (ValueError, KeyError, StopIteration) as exc:
            if isinstance(exc, AdapterError):
                raise
            why = f"{type(exc).__name__}: {exc}"
            raise InputError(f"the {row.channel} message cannot be read as a verzoek: {why}") from exc

    def _verzoek_for(self, row: Any, steps: Steps) -> Verzoek:
        if row.channel == "stuf-lvo":
            envelope = parse(bytes(row.body), Limits(max_bytes=2**31))
            body = envelope.find(_SOAP_BODY)
            assert body is not None
            message = next(c for c in body if isinstance(c.tag, str))
            ontvanger = (row.ontvanger or "").split("/")[0] or None
            return parse_verzoek(message, ontvanger)
        if row.channel == "stam":
            return self._from_werkmap(row, steps)
        raise InputError(f"no verzoek source for channel {row.channel!r}")

    def _from_werkmap(self, row: Any, steps: Steps) -> Verzoek:
        if self.werkmap is None:
            raise ConfigError("a STAM verzoek needs the werkmap: configure [werkmap]")
        werkmap = self.werkmap
        n = stam.read_notificatie(parse(bytes(row.body), Limits(max_bytes=2**24)))
        refs = run_step(steps, "werkmap:referenties", lambda: werkmap.referenties(n.verzoeknummer, n.volgnummer))
        xml = werkmap.verzoek_xml(refs)
        bestanden: dict[str, tuple[str, int, str]] = {}
        for doc in refs.get("documenten", []):
            key = f"werkmap:document:{doc['documentId']}"
            got = run_step(
                steps,
                key,
                lambda doc=doc: {
                    "bestand": str(werkmap.download(doc)),
                    "grootte": doc["grootte"],
                    "sha256": doc["sha256"],
                },  # type: ignore[misc]
            )
            bestanden[doc["documentId"]] = (got["bestand"], int(got["grootte"]), got["sha256"])
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
        return parse_stam_verzoek(root, set(self.own_oins), bestanden)
