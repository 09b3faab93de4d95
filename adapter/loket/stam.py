"""STAM (DSO-LV) and the werkmap "Verzoek afhandelen" API as this project reconstructs them (contract §2-3).

Not official: both namespaces' schemas, the notification root element, the werkmap paths, JSON shapes and the
OIN header name. Everything that depends on them reads them from here, so the official shapes can replace
them in one place. Public facts followed: STAM field names, the doel values, the two-step fetch
(verzoekreferenties, then each file), ``verzoeken/_zoek`` in pages of 50 and ``verzoeken/{nr}/samenvatting``.

Werkmap paths are relative to a configurable base URL (``DEFAULT_BASE_PATH`` is the path part of the public
pre-production URL). Reconstructed details decided here:

- ``GET verzoekreferenties(nr)`` takes an optional ``?volgnummer=N`` (``VOLGNUMMER_PARAM``) for one version;
  without it, the latest version. The same parameter works on ``samenvatting(nr)`` and ``pdf(nr)``, and the
  hrefs in a referenties answer carry it, so they always point at the version the answer describes.
- The referenties of a version list the documents of that version's verzoek (every version is a full
  snapshot, so an aanvulling lists earlier documents again: same documentId = same file).
- ``POST ZOEK``: ``vanaf`` required, ``tot`` optional (exclusive); each an ISO 8601 date (midnight) or
  date-time, Dutch local time when it has no offset. ``pagina`` 1-based (default 1), ``paginagrootte`` at most
  ``ZOEK_PAGINAGROOTTE_MAX`` (default that maximum). One hit per version whose indiendatum is in
  [vanaf, tot) and whose bevoegd gezag or uitvoerende instantie is the caller's OIN, oldest first.
  ``aantalPaginas`` is 0 when nothing matches.
- Errors are ``application/problem+json`` (``title``, ``status``, ``detail``): 400 bad input, 403 missing or
  wrong ``X-Oin``, 404 unknown (or not ours) verzoek, version or document.
- ``GET document(id)`` honours ``Range: bytes=N-`` (206 + ``Content-Range``) so a broken download resumes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict, get_args
from urllib.parse import quote

from lxml import etree

from adapter.model import Soort

# -- STAM messages ----------------------------------------------------------------------------------------

#: Namespace of the verzoek (seen in third-party code parsing real STAM 4 files).
VERZOEK = "http://www.omgevingswet.nl/koppelvlak/stam-v4/verzoek"
#: Namespace of the verzoeknotificatie (reconstructed, same convention).
VERZOEKNOTIFICATIE = "http://www.omgevingswet.nl/koppelvlak/stam-v4/verzoeknotificatie"
#: Our own schemas, relative to the ``xsd/`` folder.
XSD_VERZOEK = "stam/verzoek.xsd"
XSD_VERZOEKNOTIFICATIE = "stam/verzoeknotificatie.xsd"
#: namespace -> schema file, ready to merge into ``adapter.schemas.SCHEMA_FILES``.
SCHEMA_FILES: dict[str, str] = {VERZOEK: XSD_VERZOEK, VERZOEKNOTIFICATIE: XSD_VERZOEKNOTIFICATIE}

#: doel (public values; Conceptverzoek was "Vooroverleg" before STAM 4.0) -> what the adapter does with it.
DOEL_SOORT: dict[str, Soort] = {
    "Initiëren": Soort.AANVRAAG,
    "Conceptverzoek": Soort.CONCEPTVERZOEK,
    "Aanvullen": Soort.AANVULLING,
    "Intrekken": Soort.INTREKKING,
}
DOELEN: tuple[str, ...] = tuple(DOEL_SOORT)

#: A bsn of nine zeros means "no BSN" (public rule).
GEEN_BSN = "000000000"

#: documenttype of the verzoek's own PDF (``pdf.href`` of the referenties) when it becomes a bijlage: map it
#: in a mapping's ``[values.informatieobjecttype]`` (our own name; STAM has no documentsoort for it).
PDF_DOCUMENTTYPE = "verzoek-pdf"


def soort_of(doel: str) -> Soort:
    """The canonical kind of a doel; KeyError for a value the schema would have refused."""
    return DOEL_SOORT[doel]


def _ns(el: etree._Element) -> str:
    ns = etree.QName(el).namespace or ""
    if ns not in SCHEMA_FILES:
        raise ValueError(f"not a STAM element: {el.tag}")
    return ns


def _text(el: etree._Element, path: str) -> str | None:
    """Text of ``path`` (local names joined by '/') below a STAM verzoek or verzoeknotificatie element."""
    ns = _ns(el)
    found = el.find("/".join(f"{{{ns}}}{p}" for p in path.split("/")))
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def verzoeknummer_of(el: etree._Element) -> str | None:
    """Works on a verzoeknotificatie and on a verzoek element."""
    return _text(el, "verzoeknummer")


def volgnummer_of(el: etree._Element) -> int | None:
    value = _text(el, "volgnummer")
    return int(value) if value and value.isdigit() else None


def doel_of(el: etree._Element) -> str | None:
    return _text(el, "doel")


def bevoegd_gezag_oin_of(el: etree._Element) -> str | None:
    return _text(el, "bevoegdGezag/oin")


def uitvoerende_instantie_oin_of(el: etree._Element) -> str | None:
    """None when the message names no uitvoerende instantie (the bevoegd gezag handles it itself)."""
    return _text(el, "uitvoerendeInstantie/oin")


def is_kopie(uitvoerende_instantie_oin: str | None, own_oins: Collection[str]) -> bool:
    """A verzoek is a kopiebericht when it names an uitvoerende instantie that is not one of ours."""
    return bool(uitvoerende_instantie_oin) and uitvoerende_instantie_oin not in own_oins


@dataclass(frozen=True)
class Notificatie:
    """What a verzoeknotificatie tells: which version of which verzoek waits in the werkmap, for whom."""

    verzoeknummer: str
    volgnummer: int
    doel: str
    bevoegd_gezag_oin: str
    uitvoerende_instantie_oin: str | None = None
    tijdstip: str | None = None

    @property
    def soort(self) -> Soort:
        return soort_of(self.doel)

    @property
    def sleutel(self) -> tuple[str, int]:
        """Duplicate key: a second notification with the same key gets the same 202 and is not stored again."""
        return (self.verzoeknummer, self.volgnummer)

    def is_kopie(self, own_oins: Collection[str]) -> bool:
        return is_kopie(self.uitvoerende_instantie_oin, own_oins)


def read_notificatie(el: etree._Element) -> Notificatie:
    """Read a verzoeknotificatie element (schema-valid input expected; ValueError names what is missing)."""
    if etree.QName(el) != etree.QName(VERZOEKNOTIFICATIE, "verzoeknotificatie"):
        raise ValueError(f"not a verzoeknotificatie: {el.tag}")
    nummer, volgnummer, doel = verzoeknummer_of(el), volgnummer_of(el), doel_of(el)
    bg = bevoegd_gezag_oin_of(el)
    missing = [
        n
        for n, v in (("verzoeknummer", nummer), ("volgnummer", volgnummer), ("doel", doel), ("bevoegdGezag/oin", bg))
        if not v
    ]
    if missing:
        raise ValueError(f"verzoeknotificatie without {', '.join(missing)}")
    assert nummer and volgnummer and doel and bg
    if doel not in DOEL_SOORT:
        raise ValueError(f"unknown doel {doel!r}")
    return Notificatie(nummer, volgnummer, doel, bg, uitvoerende_instantie_oin_of(el), _text(el, "tijdstipNotificatie"))


# -- werkmap "Verzoek afhandelen" REST API (paths relative to the base URL) ----------------------------------

#: Path part of the base URL (pre-production: https://pkio.service.pre.omgevingswet.overheid.nl:443 + this).
DEFAULT_BASE_PATH = "/overheid/verzoeken/api/afhandelen/v2"
#: Header carrying the OIN we act for (reconstructed name; the real one is not public).
OIN_HEADER = "X-Oin"
#: Query parameter selecting one version on verzoekreferenties / samenvatting / pdf.
VOLGNUMMER_PARAM = "volgnummer"
#: POST: search verzoeken by indiendatum (see module doc).
ZOEK = "/verzoeken/_zoek"
#: Page size limit of ZOEK (public: pages of 50).
ZOEK_PAGINAGROOTTE_MAX = 50
#: Allowed ``rol`` values of an overdracht.
Rol = Literal["bevoegdGezag", "behandeldienst"]
ROL_BEVOEGD_GEZAG: Rol = "bevoegdGezag"
ROL_BEHANDELDIENST: Rol = "behandeldienst"
ROLLEN: tuple[Rol, ...] = get_args(Rol)
PROBLEM_JSON = "application/problem+json"


def _seg(value: str) -> str:
    return quote(value, safe="")


def verzoekreferenties(verzoeknummer: str) -> str:
    """GET -> ``Referenties`` JSON; add ``?volgnummer=N`` for one version (default: the latest)."""
    return f"/verzoeken/{_seg(verzoeknummer)}/verzoekreferenties"


def samenvatting(verzoeknummer: str) -> str:
    """GET -> the STAM verzoek XML (application/xml); ``?volgnummer=N`` optional."""
    return f"/verzoeken/{_seg(verzoeknummer)}/samenvatting"


def pdf(verzoeknummer: str) -> str:
    """GET -> the publiceerbare PDF (application/pdf); ``?volgnummer=N`` optional. Reconstructed path."""
    return f"/verzoeken/{_seg(verzoeknummer)}/pdf"


def document(document_id: str) -> str:
    """GET -> the file bytes (stream them: may be GBs); ``Range: bytes=N-`` resumes."""
    return f"/documenten/{_seg(document_id)}"


def overdragen(verzoeknummer: str) -> str:
    """POST ``Overdracht`` JSON -> 202: hand the verzoek to another bevoegd gezag or behandeldienst."""
    return f"/verzoeken/{_seg(verzoeknummer)}/_overdragen"


class Href(TypedDict):
    href: str


class WerkmapDocument(TypedDict):
    """One document of the verzoekreferenties (``WerkmapClient.referenties`` checks href, sha256, grootte)."""

    documentId: str
    bestandsnaam: NotRequired[str]
    href: str
    sha256: str  # lowercase hex of the whole file
    grootte: int  # bytes


class VerzoekReferenties(TypedDict):
    """``GET verzoekreferenties`` as the contract gives it; the client tolerates a missing link or list."""

    verzoeknummer: str
    volgnummer: NotRequired[int]
    verzoek: NotRequired[Href]
    pdf: NotRequired[Href]
    documenten: NotRequired[list[WerkmapDocument]]


class ZoekVraag(TypedDict, total=False):
    vanaf: str  # required
    tot: str
    pagina: int
    paginagrootte: int


class ZoekTreffer(TypedDict):
    verzoeknummer: str
    volgnummer: int
    doel: str
    indiendatum: str  # as in the verzoek XML


class ZoekAntwoord(TypedDict):
    verzoeken: list[ZoekTreffer]
    pagina: int
    aantalPaginas: int


class Overdracht(TypedDict, total=False):
    naarOin: str  # required, 20 digits
    rol: Rol  # required
    toelichting: str
