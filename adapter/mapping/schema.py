"""The shape of a mapping file (``mappings/*.toml``); unknown keys are errors.

Example (see ``mappings/voorbeeldstad.toml``)::

    [[route]]                       # which target handles verzoeken for this OIN
    oin = "00000001002564440000"
    target = "zaaksysteem"

    [defaults]                      # profile defaults for every zaak (templates allowed)
    omschrijving = "{verzoek.omschrijving}"

    [profiles.regulier]             # per-zaaktype profiles override the defaults
    vertrouwelijkheidaanduiding = "openbaar"

    [[zaaktypen]]                   # activiteit/werkzaamheid codes → zaaktype (one-to-one or -many)
    activiteiten = ["dakkapel-plaatsen"]
    zaaktype = "ZT-OMV-REG"
    profile = "regulier"

    [triage]                        # unmapped activiteiten land here (counted, visible)
    zaaktype = "ZT-TRIAGE"

    [values.informatieobjecttype]   # documenttype → informatieobjecttype
    Bouwtekening = "Tekening"

    [xpath]                         # escape hatch: values read from the raw message
    procedure = "//L:aanvraagprocedure"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.loket.stam import Rol
from adapter.model import Soort

#: ``omschrijvingGeneriek`` of a roltype (ZGW Catalogi/Zaken enum).
RoltypeGeneriek = Literal[
    "adviseur",
    "behandelaar",
    "belanghebbende",
    "beslisser",
    "initiator",
    "klantcontacter",
    "zaakcoordinator",
    "mede_initiator",
]
ZAAK_SOORTEN = [Soort.AANVRAAG, Soort.CONCEPTVERZOEK, Soort.ADVIESAANVRAAG]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Strict):
    oin: str = Field(..., min_length=1)
    target: str = Field(..., min_length=1)
    #: Which soorten this route takes; all when left out.
    soorten: list[Soort] | None = None


class ProfielRegels(_Strict):
    """Profile values; every string may be a template like ``"Aanvraag {verzoek.nummer}"``."""

    omschrijving: str | None = None
    toelichting: str | None = None
    bronorganisatie: str | None = Field(None, pattern=r"^\d{9}$")
    verantwoordelijke_organisatie: str | None = Field(None, pattern=r"^\d{9}$")
    vertrouwelijkheidaanduiding: str | None = None
    roltype_initiator: RoltypeGeneriek | None = None
    roltype_gemachtigde: RoltypeGeneriek | None = None
    statustype_start: int | None = Field(None, ge=1)
    statustype_intrekking: int | None = Field(None, ge=1)
    zaak_identificatie: str | None = None
    kenmerk_bron: str | None = None
    informatieobjecttype: str | None = None  # default for bijlagen whose documenttype is not mapped


class ZaaktypeRegel(_Strict):
    activiteiten: list[str] = Field(..., min_length=1)  # codes, or "*" for any
    zaaktype: str = Field(..., min_length=1)
    profile: str | None = None
    soorten: list[Soort] = Field(default_factory=lambda: list(ZAAK_SOORTEN))


class Triage(_Strict):
    zaaktype: str = Field(..., min_length=1)
    profile: str | None = None


class OverdrachtRegel(_Strict):
    """STAM verzoeken with one of these activiteiten are handed to another organisation (werkmap)."""

    activiteiten: list[str] = Field(..., min_length=1)
    naar: str = Field(..., pattern=r"^\d{20}$")  # OIN
    rol: Rol = "behandeldienst"
    toelichting: str = "Overgedragen door loket-adapter volgens mapping"


class Waarden(_Strict):
    informatieobjecttype: dict[str, str] = Field(default_factory=dict)
    vertrouwelijkheid: dict[str, str] = Field(default_factory=dict)  # keys "true"/"false"


class MappingFile(_Strict):
    route: list[Route] = Field(..., min_length=1)
    defaults: ProfielRegels = ProfielRegels()
    profiles: dict[str, ProfielRegels] = Field(default_factory=dict)
    zaaktypen: list[ZaaktypeRegel] = Field(default_factory=list)
    triage: Triage | None = None
    overdragen: list[OverdrachtRegel] = Field(default_factory=list)
    values: Waarden = Waarden()
    xpath: dict[str, str] = Field(default_factory=dict)
