"""The canonical ``Verzoek``: what every inbound channel is parsed into and every mapping reads.

StUF-LVO messages and STAM verzoeken both become a ``Verzoek``; mappings and targets never see raw
XML (except through a mapping's explicit XPath escape hatch, which reads ``Verzoek.bron_xml``).
Plain frozen dataclasses: cheap, hashable, easy to print in ``mappings preview``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Soort(StrEnum):
    """What the verzoek asks for; decides the delivery flow."""

    AANVRAAG = "aanvraag"  # new zaak (StUF-LVO AanbiedenAanvraag, STAM Initiëren)
    CONCEPTVERZOEK = "conceptverzoek"  # vooroverleg / Conceptverzoek: zaak of its mapped zaaktype
    AANVULLING = "aanvulling"  # documents added to the existing zaak
    INTREKKING = "intrekking"  # status on the existing zaak
    WIJZIGING_GEMACHTIGDE = "wijziging_gemachtigde"  # rol on the existing zaak
    ADVIES = "advies"  # advice document on the existing zaak
    ADVIESAANVRAAG = "adviesaanvraag"  # we are adviseur: a zaak of our own

    @property
    def creates_zaak(self) -> bool:
        return self in (Soort.AANVRAAG, Soort.CONCEPTVERZOEK, Soort.ADVIESAANVRAAG)


@dataclass(frozen=True)
class Adres:
    straatnaam: str | None = None
    huisnummer: int | None = None
    huisletter: str | None = None
    huisnummertoevoeging: str | None = None
    postcode: str | None = None
    woonplaats: str | None = None
    bag_nummeraanduiding_id: str | None = None


@dataclass(frozen=True)
class KadastraalPerceel:
    kadastrale_gemeente: str
    sectie: str
    perceelnummer: str

    @property
    def aanduiding(self) -> str:
        return f"{self.kadastrale_gemeente} {self.sectie} {self.perceelnummer}"


@dataclass(frozen=True)
class PuntRD:
    x: float
    y: float


@dataclass(frozen=True)
class Locatie:
    adres: Adres | None = None
    percelen: tuple[KadastraalPerceel, ...] = ()
    punt_rd: PuntRD | None = None


@dataclass(frozen=True)
class Persoon:
    """Initiatiefnemer or gemachtigde: a natuurlijk persoon or a niet-natuurlijk persoon/vestiging."""

    natuurlijk: bool
    bsn: str | None = None
    voorletters: str | None = None
    voorvoegsel: str | None = None
    geslachtsnaam: str | None = None
    kvk_nummer: str | None = None
    vestigingsnummer: str | None = None
    naam: str | None = None
    correspondentieadres: Adres | None = None
    emailadres: str | None = None
    telefoonnummer: str | None = None

    @property
    def weergavenaam(self) -> str:
        if self.natuurlijk:
            return " ".join(p for p in (self.voorletters, self.voorvoegsel, self.geslachtsnaam) if p)
        return self.naam or ""


@dataclass(frozen=True)
class Organisatie:
    oin: str
    naam: str | None = None


@dataclass(frozen=True)
class Activiteit:
    """An activiteit (STAM) or werkzaamheid/onderdeel (StUF-LVO); ``code`` is what mappings match."""

    code: str
    omschrijving: str | None = None


@dataclass(frozen=True)
class Specificatie:
    vraag_id: str
    vraag: str | None = None
    antwoord: str | None = None


@dataclass(frozen=True)
class Bijlage:
    """One document: its bytes inline (``inhoud``, StUF-LVO base64), or in the content-addressed file
    store (``bestand`` path, werkmap downloads, possibly GBs: never read whole), or not here yet
    (both None: arrives through the postbus)."""

    id: str
    bestandsnaam: str
    documenttype: str | None = None
    mime_type: str | None = None
    vertrouwelijk: bool = False
    inhoud: bytes | None = field(default=None, repr=False)
    bestand: str | None = None
    grootte: int | None = None
    sha256: str | None = None

    @property
    def heeft_inhoud(self) -> bool:
        return self.inhoud is not None or self.bestand is not None

    @property
    def omvang(self) -> int | None:
        return len(self.inhoud) if self.inhoud is not None else self.grootte


@dataclass(frozen=True)
class Advies:
    adviesverzoek_id: str
    adviseur: Organisatie
    datum: date | None = None
    strekking: str | None = None

    def beschrijving(self, max_len: int = 1000) -> str:
        """What the advice document says in the zaaksysteem (ZGW ``beschrijving``, ZDS EDC ``beschrijving``,
        both at most 1000 characters), so a behandelaar sees who advised and the strekking on the document:
        ``Advies van <naam> (OIN <oin>): strekking <strekking>``. Pure (a retry sends the same text), whitespace
        collapsed, at most ``max_len`` characters (a long naam is cut first, the strekking kept)."""
        naam = " ".join((self.adviseur.naam or "").split())
        oin = self.adviseur.oin.strip()
        strekking = " ".join((self.strekking or "").split())
        tail = f": strekking {strekking}" if strekking else ": geen strekking opgegeven"
        if naam and oin:
            room = max_len - len(f"Advies van  (OIN {oin}){tail}")
            if len(naam) > room:
                naam = naam[: room - 1].rstrip() + "…" if room > 1 else ""
        wie = f"{naam} (OIN {oin})" if naam and oin else naam or (f"OIN {oin}" if oin else "onbekende adviseur")
        text = f"Advies van {wie}{tail}"
        return text if len(text) <= max_len else text[: max_len - 1] + "…"


@dataclass(frozen=True)
class Verzoek:
    bron: str  # "stuf-lvo" | "stam"
    bericht: str  # message type it came from, e.g. omvDi01AanbiedenAanvraag
    soort: Soort
    nummer: str  # aanvraagnummer / verzoeknummer
    bevoegd_gezag: Organisatie | None = None
    #: The organisation on our side it was addressed to (bevoegd gezag, behandeldienst or, for an
    #: adviesaanvraag, the adviseur we are). Routing matches on its OIN.
    ontvanger: Organisatie | None = None
    volgnummer: int | None = None
    #: The message's own reference (StUF referentienummer; STAM ``verzoeknummer/volgnummer``): unique per
    #: message, so what a delivery made in the zaaksysteem can be told from what an earlier one made.
    referentie: str | None = None
    type: str | None = None  # aanvraagprocedure / STAM type
    omschrijving: str | None = None
    toelichting: str | None = None
    datum: date | None = None
    uitvoerende_instantie: Organisatie | None = None
    initiatiefnemer: Persoon | None = None
    gemachtigde: Persoon | None = None
    locaties: tuple[Locatie, ...] = ()
    activiteiten: tuple[Activiteit, ...] = ()
    specificaties: tuple[Specificatie, ...] = ()
    bijlagen: tuple[Bijlage, ...] = ()
    reden: str | None = None  # intrekking
    #: The advies (soort advies); for an adviesaanvraag the adviesverzoek we are asked to answer (its
    #: ``adviesverzoek_id`` is the StUF crossRefnummer) with ourselves as adviseur.
    advies: Advies | None = None
    #: The message element as received, for a mapping's XPath escape hatch only.
    bron_xml: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def zaak_sleutel(self) -> str:
        """The key its zaken are linked under (``zaak_links.nummer``): the nummer, and for an adviesaanvraag
        one per adviesverzoek, ``<nummer>#<adviesverzoek>`` (two advice requests on one aanvraag are two zaken
        of one zaaktype; at most 64 characters, a longer one ends in a hash)."""
        if self.soort is not Soort.ADVIESAANVRAAG or not self.advies or not self.advies.adviesverzoek_id:
            return self.nummer
        key = f"{self.nummer}#{self.advies.adviesverzoek_id}"
        if len(key) <= 64:
            return key
        return f"{key[:47]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    @property
    def hoofdlocatie(self) -> Locatie | None:
        """Only the first location places the zaak (STAM rule; same for StUF-LVO)."""
        return self.locaties[0] if self.locaties else None
