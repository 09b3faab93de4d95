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
    roltype_initiator: str  # roltype omschrijving or omschrijvingGeneriek in the catalogus
    roltype_gemachtigde: str
    statustype_start: int | str | None  # statustype (volgnummer or omschrijving) set after creation
    statustype_intrekking: int | str | None
    zaak_identificatie: str | None  # deterministic identificatie, or None to let the zaaksysteem choose
    kenmerk_bron: str  # ``bron`` of the zaak's kenmerk {verzoeknummer, bron}
    resultaattype_intrekking: str | None = None  # set first when the intrekking status is the eindstatus


@dataclass(frozen=True)
class DocumentOpdracht:
    bijlage: Bijlage
    informatieobjecttype: str  # omschrijving of the informatieobjecttype in the catalogus
    vertrouwelijkheidaanduiding: str
    titel: str


@dataclass(frozen=True)
class ZaakOpdracht:
    zaaktype: str  # identificatie of the zaaktype in the target's catalogus
    profiel: Profiel
    triage: bool = False  # no activiteit matched: the triage zaaktype
    #: The bijlagen as documents on a zaak of this zaaktype (types come from this zaaktype's profile,
    #: since a zaaktype allows only some informatieobjecttypen).
    documenten: tuple[DocumentOpdracht, ...] = ()


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
    #: For follow-ups: per zaaktype the mapping knows, its profile and documents, so the target can act
    #: as the existing zaak's own zaaktype requires.
    vervolg: dict[str, ZaakOpdracht] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # values from the mapping's XPath escape hatch
    overdracht: Overdracht | None = None
