"""StUF-LVO 3.12 as this project reconstructs it (contract §1).

Not official: the sector namespace URI, the SOAPAction form and the content models. Everything that
depends on them reads them from here, so the official shapes can replace them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

#: Reconstructed sector namespace (StUF naming convention).
LVO = "http://www.egem.nl/StUF/sector/lvo/0312"
#: Our own schema of the message set, relative to the ``xsd/`` folder.
XSD = "lvo/lvo0312.xsd"
WSDL = "wsdl/stuf-lvo.wsdl"


@dataclass(frozen=True)
class LvoBericht:
    """One StUF-LVO message: its element, the content element below the stuurgegevens, its kind."""

    name: str
    content: str
    berichtcode: str
    #: The canonical kind of verzoek it carries (used by mapping and routing).
    soort: str
    richting: str = "in"

    @property
    def soap_action(self) -> str:
        return f"{LVO}/{self.name}"


INCOMING: dict[str, LvoBericht] = {
    b.name: b
    for b in (
        LvoBericht("omvDi01AanbiedenAanvraag", "aanvraag", "Di01", "aanvraag"),
        LvoBericht("wwvDi01AanbiedenAanvraag", "aanvraag", "Di01", "aanvraag"),
        LvoBericht("vrgDi01AanvragenVooroverleg", "aanvraag", "Di01", "conceptverzoek"),
        LvoBericht("vrgDi01IndienenAanvulling", "aanvulling", "Di01", "aanvulling"),
        LvoBericht("vrgDi01IntrekkenAanvraag", "intrekking", "Di01", "intrekking"),
        LvoBericht("vrgDi01WijzigGemachtigde", "wijziging", "Di01", "wijziging_gemachtigde"),
        LvoBericht("vrgDi01VoegAdviesToe", "advies", "Di01", "advies"),
        LvoBericht("omvDu01LeverenAanvraag", "aanvraag", "Du01", "adviesaanvraag"),
    )
}

OUTGOING: dict[str, LvoBericht] = {
    b.name: b
    for b in (
        LvoBericht("vrgDi01KoppelZaakAanAanvraag", "koppeling", "Di01", "koppeling", "uit"),
        LvoBericht("vrgDi01WijzigStatus", "statuswijziging", "Di01", "status", "uit"),
        LvoBericht("vrgDi01AanvragenAdvies", "adviesaanvraag", "Di01", "adviesverzoek", "uit"),
    )
}


def aanvraagnummer_of(message_el: etree._Element) -> str | None:
    """The aanvraagnummer of an incoming message (first ``LVO:aanvraagnummer`` under the content)."""
    el = message_el.find(f"{{{LVO}}}*/{{{LVO}}}aanvraagnummer")
    return el.text.strip() if el is not None and el.text else None


def content_rules(message_el: etree._Element) -> list[tuple[int | None, str]]:
    """Rules of the reconstructed content model that our XSD leaves to code: (line, problem)."""
    problems: list[tuple[int | None, str]] = []
    for locatie in message_el.iter(f"{{{LVO}}}locatie"):
        if not any(isinstance(c.tag, str) for c in locatie):
            problems.append((locatie.sourceline, "locatie needs at least one of adres, kadastraalPerceel, puntRD"))
    return problems
