"""What a mapping decides for one verzoek: the target-neutral ``Opdracht`` every target carries out."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapter.loket.stam import Rol
from adapter.model import Bijlage, Verzoek


@dataclass(frozen=True)
class Profiel:
    """Zaak attributes after defaults, profile and templates were applied."""

    omschrijving: str
    toelichting: str
    bronorganisatie: str  # RSIN
    verantwoordelijke_organisatie: str  # RSIN
    vertrouwelijkheidaanduiding: str
    roltype_initiator: str  # roltype omschrijvingGeneriek in the catalogus
    roltype_gemachtigde: str
    statustype_start: int | None  # statustype volgnummer set after creation
    statustype_intrekking: int | None
    zaak_identificatie: str | None  # deterministic identificatie, or None to let the zaaksysteem choose
    kenmerk_bron: str  # ``bron`` of the zaak's kenmerk {verzoeknummer, bron}


@dataclass(frozen=True)
class ZaakOpdracht:
    zaaktype: str  # identificatie of the zaaktype in the target's catalogus
    profiel: Profiel
    triage: bool = False  # no activiteit matched: the triage zaaktype


@dataclass(frozen=True)
class DocumentOpdracht:
    bijlage: Bijlage
    informatieobjecttype: str  # omschrijving of the informatieobjecttype in the catalogus
    vertrouwelijkheidaanduiding: str
    titel: str


@dataclass(frozen=True)
class Overdracht:
    """Hand the verzoek over to another organisation in the werkmap (STAM), by mapping rule."""

    naar: str  # OIN
    rol: Rol
    toelichting: str


@dataclass(frozen=True)
class Opdracht:
    target: str
    verzoek: Verzoek
    #: Zaken to create (aanvraag, conceptverzoek, adviesaanvraag); one per mapped zaaktype.
    zaken: tuple[ZaakOpdracht, ...] = ()
    documenten: tuple[DocumentOpdracht, ...] = ()
    #: For follow-up verzoeken (aanvulling, intrekking, …): the profile of the existing zaak.
    profiel: Profiel | None = None
    extra: dict[str, str] = field(default_factory=dict)  # values from the mapping's XPath escape hatch
    overdracht: Overdracht | None = None
