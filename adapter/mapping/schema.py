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

    [adviseur]                      # omvDu01LeverenAanvraag (we are adviseur): a zaak per adviesverzoek
    zaaktype = "ZT-ADVIES"

    [values.informatieobjecttype]   # documenttype → informatieobjecttype
    Bouwtekening = "Tekening"

    [xpath]                         # escape hatch: values read from the raw message
    procedure = "//L:aanvraagprocedure"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.loket.stam import Rol
from adapter.model import Soort

#: ``omschrijvingGeneriek`` of a roltype (ZGW Catalogi/Zaken enum). A mapping names a roltype by its
#: ``omschrijving`` (e.g. "Gemachtigde") or by one of these; a generic name that fits two roltypen of a
#: zaaktype is an error, never a silent first pick.
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
    #: Which verzoek types (STAM ``type``, e.g. "Aanvraag vergunning"; StUF-LVO ``aanvraagprocedure``); all
    #: when left out.
    typen: list[str] | None = None


class ProfielRegels(_Strict):
    """Profile values; every string may be a template like ``"Aanvraag {verzoek.nummer}"``."""

    omschrijving: str | None = None
    toelichting: str | None = None
    bronorganisatie: str | None = Field(None, pattern=r"^\d{9}$")
    verantwoordelijke_organisatie: str | None = Field(None, pattern=r"^\d{9}$")
    vertrouwelijkheidaanduiding: str | None = None
    #: roltype by omschrijving ("Aanvrager") or omschrijvingGeneriek ("initiator")
    roltype_initiator: str | None = Field(None, min_length=1)
    roltype_gemachtigde: str | None = Field(None, min_length=1)
    #: statustype by volgnummer (1) or omschrijving ("Ontvangen")
    statustype_start: int | str | None = None
    statustype_intrekking: int | str | None = None
    #: resultaattype (omschrijving) set before an intrekking's status when that status is the eindstatus
    resultaattype_intrekking: str | None = Field(None, min_length=1)
    zaak_identificatie: str | None = None
    kenmerk_bron: str | None = None
    #: fallback informatieobjecttype (omschrijving) for bijlagen whose documenttype is not mapped
    informatieobjecttype: str | None = None
    #: documenttype → informatieobjecttype for the zaaktypen of this profile, instead of
    #: ``[values.informatieobjecttype]`` ("*" = any other); only in ``[profiles.*]``
    informatieobjecttypen: dict[str, str] | None = None

    @field_validator("statustype_start", "statustype_intrekking")
    @classmethod
    def _volgnummer_or_name(cls, v: int | str | None) -> int | str | None:
        if (isinstance(v, int) and v < 1) or (isinstance(v, str) and not v.strip()):
            raise ValueError("a statustype volgnummer (1, 2, …) or omschrijving")
        return v


class ZaaktypeRegel(_Strict):
    """A zaak of ``zaaktype`` for verzoeken of these soorten (and typen) with one of these activiteiten.

    ``"*"`` in activiteiten matches every verzoek, *in addition* to the other rules that match (a second
    zaak). ``fallback = true`` is "otherwise": it applies when no activiteit rule matched (a ``"*"`` rule
    is not an activiteit rule, so ``"*"`` and a fallback can both apply).
    """

    activiteiten: list[str] = Field(default_factory=list)  # codes, or "*" for any
    zaaktype: str = Field(..., min_length=1)
    profile: str | None = None
    soorten: list[Soort] = Field(default_factory=lambda: list(ZAAK_SOORTEN))
    typen: list[str] | None = None  # verzoek types this rule takes; all when left out
    fallback: bool = False

    @field_validator("soorten")
    @classmethod
    def _zaak_soorten(cls, v: list[Soort]) -> list[Soort]:
        other = [s.value for s in v if s not in ZAAK_SOORTEN]
        if other:
            raise ValueError(f"{', '.join(other)} never make a zaak; soorten that do: {', '.join(ZAAK_SOORTEN)}")
        return v

    @model_validator(mode="after")
    def _activiteiten_or_fallback(self) -> ZaaktypeRegel:
        if not self.activiteiten and not self.fallback:
            raise ValueError("give activiteiten, or fallback = true")
        if self.activiteiten and self.fallback:
            raise ValueError("a fallback rule applies when no activiteit matched: leave activiteiten out")
        return self


class Triage(_Strict):
    zaaktype: str = Field(..., min_length=1)
    profile: str | None = None


#: The default ``[adviseur] zaak_identificatie``: one per adviesverzoek (the requester's, its crossRefnummer).
ADVISEUR_IDENTIFICATIE = "ADV-{verzoek.nummer}-{verzoek.advies.adviesverzoek_id}"


class AdviseurRegel(_Strict):
    """``omvDu01LeverenAanvraag``: we are the adviseur (soort ``adviesaanvraag``). Each adviesverzoek (the
    message's crossRefnummer) becomes a zaak of its own of ``zaaktype``, linked to the aanvraagnummer; two
    advice requests on one aanvraag are two zaken, each with its own documents. Instead of the
    ``[[zaaktypen]]`` rules and ``[triage]``."""

    zaaktype: str = Field(..., min_length=1)
    profile: str | None = None
    #: A template naming the adviesverzoek (at most 40 characters are used; a longer one ends in a hash).
    zaak_identificatie: str = Field(ADVISEUR_IDENTIFICATIE, min_length=1)


class OverdrachtRegel(_Strict):
    """STAM verzoeken with one of these activiteiten are handed to another organisation (werkmap)."""

    activiteiten: list[str] = Field(..., min_length=1)
    naar: str = Field(..., pattern=r"^\d{20}$")  # OIN
    rol: Rol = "behandeldienst"
    toelichting: str = "Overgedragen door loket-adapter volgens mapping"


class AdviesRegel(_Strict):
    """A ZGW notification (``POST /zgw/notificaties``, Notificaties API 1.0) that asks for advice: when one
    matches, an adviesverzoek for the notification's zaak (``hoofdObject``) goes to ``adviseur``
    (``adapter.advies``). Every given key must match; ``statustype`` looks the status up in the target."""

    kanaal: str = Field("zaken", min_length=1)
    resource: str = Field("status", min_length=1)
    actie: str = Field("create", min_length=1)
    #: Notification kenmerken that must have these values (e.g. ``zaaktype = "https://…/zaaktypen/…"``).
    kenmerken: dict[str, str] = Field(default_factory=dict)
    #: The status's statustype (URL, or its omschrijving): read from the ZGW target (``resource = "status"``).
    statustype: str | None = Field(None, min_length=1)
    #: An ``[adviseurs.NAME]`` of the configuration, by name or OIN.
    adviseur: str = Field(..., min_length=1)
    #: Default: ``[advies] omschrijving``.
    omschrijving: str | None = Field(None, min_length=1, max_length=1000)
    #: einddatum = the notification's day + this many days. Default: ``[advies] termijn_dagen``.
    termijn_dagen: int | None = Field(None, ge=1, le=3650)
    #: "alle": every bijlage of the aanvraag (and its aanvullingen) goes with it; "geen": none.
    bijlagen: Literal["alle", "geen"] = "alle"

    @model_validator(mode="after")
    def _statustype_of_a_status(self) -> AdviesRegel:
        if self.statustype is not None and self.resource != "status":
            raise ValueError('statustype needs resource = "status"')
        return self


class MirrorRegel(_Strict):
    """Copies of delivered documents to an SFTP postbox's ``outbox`` (``adapter.postbox.mirror``): every bijlage
    of a delivered verzoek that matches each key given (a list matches any of its values; a key left out
    matches everything) is uploaded once, verified, under ``<nummer>_<bestandsnaam>``."""

    #: A ``[postboxes.NAME]`` of the configuration (``mappings check`` reports an unknown one).
    postbox: str = Field(..., min_length=1)
    #: Zaaktypen (identificatie) of the zaken the delivery made or found for the verzoek.
    zaaktypen: list[str] | None = Field(None, min_length=1)
    #: Documenttypes of the bijlagen (as in the verzoek, before ``[values.informatieobjecttype]``).
    documenttypen: list[str] | None = Field(None, min_length=1)
    #: OINs of adviseurs: only the documents of an advies (vrgDi01VoegAdviesToe) from one of them.
    adviseurs: list[str] | None = Field(None, min_length=1)
    #: Upload ``<nummer>-<message id>.manifest.json`` (name, size, sha256 of each file) after the batch.
    manifest: bool = False

    @field_validator("adviseurs")
    @classmethod
    def _oins(cls, v: list[str] | None) -> list[str] | None:
        for oin in v or []:
            if not (len(oin) == 20 and oin.isdigit()):
                raise ValueError(f"{oin!r} is not an OIN (20 digits)")
        return v


class Waarden(_Strict):
    informatieobjecttype: dict[str, str] = Field(default_factory=dict)
    vertrouwelijkheid: dict[Literal["true", "false"], str] = Field(default_factory=dict)


class MappingFile(_Strict):
    route: list[Route] = Field(..., min_length=1)
    defaults: ProfielRegels = ProfielRegels()
    profiles: dict[str, ProfielRegels] = Field(default_factory=dict)
    zaaktypen: list[ZaaktypeRegel] = Field(default_factory=list)
    triage: Triage | None = None
    #: Adviesaanvragen (we are the adviseur): a zaak per adviesverzoek.
    adviseur: AdviseurRegel | None = None
    overdragen: list[OverdrachtRegel] = Field(default_factory=list)
    values: Waarden = Waarden()
    xpath: dict[str, str] = Field(default_factory=dict)
    #: Documents copied to SFTP postboxes once delivered (``adapter.postbox.mirror``).
    mirror: list[MirrorRegel] = Field(default_factory=list)
    #: ZGW notifications that put out an adviesverzoek (``adapter.advies``).
    adviesverzoeken: list[AdviesRegel] = Field(default_factory=list)

    @field_validator("defaults")
    @classmethod
    def _no_map_in_defaults(cls, v: ProfielRegels) -> ProfielRegels:
        if v.informatieobjecttypen is not None:
            raise ValueError(
                "informatieobjecttypen belongs in a profile; for every zaaktype use [values.informatieobjecttype]"
            )
        return v
