"""STAM verzoek element → canonical ``Verzoek`` (pure), read laxly.

Our ``xsd/stam/verzoek.xsd`` is a reconstruction and the DSO's real files will differ, so a verzoek is never
refused for what we merely did not foresee (contract §2): elements are found by local name in any namespace,
elements we do not know and deviations from our schema become warnings (``read_stam_verzoek``), and only
what the delivery cannot do without stops it, as an ``InputError`` (permanent: ``needs-attention`` at once).
Warnings and errors name elements, never their content (personal data). The files of the verzoek are
downloaded separately from the werkmap; pass what is known about them as ``bijlage_bestanden``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cache

from lxml import etree

from adapter.errors import InputError
from adapter.loket.stam import DOEL_SOORT, GEEN_BSN, PDF_DOCUMENTTYPE, VERZOEK, XSD_VERZOEK, is_kopie
from adapter.model import (
    Activiteit,
    Adres,
    Bijlage,
    KadastraalPerceel,
    Locatie,
    Organisatie,
    Persoon,
    PuntRD,
    Specificatie,
    Verzoek,
)
from adapter.paths import XSD_DIR
from adapter.schemas import SchemaInvalid, SchemaSet

#: At most this many warnings are kept per verzoek (then one line says how many more there were).
MAX_WARNINGS = 50


@cache
def _x(path: str) -> str:
    """Our paths (``V:a/V:b``) matched by local name in any namespace: real STAM files spread their elements
    over several namespaces (verzoek, IMAM, common), our reconstruction has one."""
    return path.replace("V:", "{*}")


#: documentId -> (path in the file store, size in bytes, sha256 hex)
BijlageBestanden = Mapping[str, tuple[str, int, str]]


def _t(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(_x(path))
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _datum(text: str | None) -> date | None:
    """The date as written (local date of the offset given), not converted to UTC."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None


def _adres(el: etree._Element | None) -> Adres | None:
    if el is None or not any(isinstance(c.tag, str) for c in el):
        return None
    huisnummer = _t(el, "V:huisnummer")
    return Adres(
        straatnaam=_t(el, "V:straatnaam"),
        huisnummer=int(huisnummer) if huisnummer and huisnummer.isdigit() else None,
        huisletter=_t(el, "V:huisletter"),
        huisnummertoevoeging=_t(el, "V:huisnummertoevoeging"),
        postcode=_t(el, "V:postcode"),
        woonplaats=_t(el, "V:woonplaatsnaam"),
        bag_nummeraanduiding_id=_t(el, "V:bagNummeraanduidingId"),
    )


def _postadres(el: etree._Element | None) -> Adres | None:
    """The Dutch address of a correspondentieAdres/postAdres: binnenlands, else postbus (as straatnaam)."""
    if el is None:
        return None
    binnen = _adres(el.find(_x("V:binnenlandsAdres")))
    if binnen is not None:
        return binnen
    afw = el.find(_x("V:afwijkendAdres"))
    if afw is None:
        return None
    nummer = _t(afw, "V:postbusnummer") or _t(afw, "V:antwoordnummer")
    soort = "Postbus" if _t(afw, "V:postbusnummer") else "Antwoordnummer"
    return Adres(
        straatnaam=soort if nummer else None,
        huisnummer=int(nummer) if nummer else None,
        postcode=_t(afw, "V:postcode"),
        woonplaats=_t(afw, "V:woonplaatsnaam"),
    )


def _persoon(el: etree._Element | None) -> Persoon | None:
    if el is None:
        return None
    np_ = el.find(_x("V:natuurlijkPersoon"))
    if np_ is not None:
        bsn = _t(np_, "V:bsn")
        return Persoon(
            natuurlijk=True,
            bsn=None if bsn == GEEN_BSN else bsn,
            voorletters=_t(np_, "V:voorletters"),
            voorvoegsel=_t(np_, "V:voorvoegsel"),
            geslachtsnaam=_t(np_, "V:achternaam"),
            correspondentieadres=_postadres(np_.find(_x("V:correspondentieAdres")))
            or _adres(np_.find(_x("V:verblijfsadres"))),
            emailadres=_t(np_, "V:emailadres"),
            telefoonnummer=_t(np_, "V:telefoonnummer"),
        )
    nnp = el.find(_x("V:nietNatuurlijkPersoon"))
    if nnp is None:
        return None
    return Persoon(
        natuurlijk=False,
        kvk_nummer=_t(nnp, "V:kvkNummer"),
        vestigingsnummer=_t(nnp, "V:vestigingsnummer"),
        naam=_t(nnp, "V:naam"),
        correspondentieadres=_postadres(nnp.find(_x("V:correspondentieAdres")))
        or _postadres(nnp.find(_x("V:postAdres")))
        or _adres(nnp.find(_x("V:bezoekadres"))),
        emailadres=_t(nnp, "V:emailadres"),
        telefoonnummer=_t(nnp, "V:telefoonnummer"),
    )


def _organisatie(el: etree._Element | None) -> Organisatie | None:
    oin = _t(el, "V:oin")
    return Organisatie(oin, _t(el, "V:naam")) if oin else None


def _locaties(root: etree._Element) -> tuple[Locatie, ...]:
    """Every projectlocatie in order (the first places the zaak). Polygons and ETRS points stay in bron_xml."""
    out = []
    for pl in root.findall(_x("V:projectlocaties/V:projectlocatie")):
        punt = pl.find(_x("V:rdPunt"))
        out.append(
            Locatie(
                adres=_adres(pl.find(_x("V:adresAanduiding"))),
                percelen=tuple(
                    KadastraalPerceel(
                        _t(k, "V:kadastraleGemeente") or "", _t(k, "V:sectie") or "", _t(k, "V:perceelnummer") or ""
                    )
                    for k in pl.findall(_x("V:kadastraleGegevens"))
                ),
                punt_rd=_punt(punt),
            )
        )
    return tuple(out)


def _punt(el: etree._Element | None) -> PuntRD | None:
    """An RD point, or None when a coordinate is missing or not a number (the schema check warns)."""
    try:
        x, y = float(_t(el, "V:x") or ""), float(_t(el, "V:y") or "")
    except ValueError:
        return None
    return PuntRD(x, y)


def _specificatie_elementen(root: etree._Element) -> list[etree._Element]:
    """Top-level specificaties (contract example) first, then those per projectactiviteit (real STAM)."""
    return root.findall(_x("V:specificaties/V:specificatie")) + root.findall(
        _x("V:projectactiviteiten/V:projectactiviteit/V:specificaties/V:specificatie")
    )


def _specificaties(specs: list[etree._Element]) -> tuple[Specificatie, ...]:
    out = []
    for s in specs:
        antwoorden = [a.text.strip() for a in s.findall(_x("V:antwoord")) if a.text and a.text.strip()]
        out.append(Specificatie(_t(s, "V:vraagId") or "", _t(s, "V:vraagtekst"), "; ".join(antwoorden) or None))
    return tuple(out)


def _bijlagen(
    root: etree._Element, specs: list[etree._Element], bestanden: BijlageBestanden | None
) -> tuple[Bijlage, ...]:
    """Documents of gevraagde bijlagen, then verzoekbijlages; a documentId listed twice counts once."""
    found: list[tuple[etree._Element, str | None]] = []
    for s in specs:
        for gb in s.findall(_x("V:gevraagdeBijlage")):
            soort = _t(gb, "V:documentsoortDSO")
            found += [(d, soort) for d in gb.findall(_x("V:documenten/V:document"))]
    for vb in root.findall(_x("V:verzoekbijlages/V:verzoekbijlage")):
        soort = _t(vb, "V:documentsoortDSO")
        found += [(d, soort) for d in vb.findall(_x("V:document"))]
    out: dict[str, Bijlage] = {}
    for d, soort in found:
        doc_id = _t(d, "V:documentId") or ""
        if doc_id in out:
            continue
        bestand = (bestanden or {}).get(doc_id)
        out[doc_id] = Bijlage(
            id=doc_id,
            bestandsnaam=_t(d, "V:bestandsnaam") or "",
            documenttype=_t(d, "V:documentsoort") or soort,
            mime_type=_t(d, "V:mimeType"),
            vertrouwelijk=(_t(d, "V:vertrouwelijk") or "false") in ("true", "1"),
            bestand=bestand[0] if bestand else None,
            grootte=bestand[1] if bestand else None,
            sha256=bestand[2] if bestand else None,
        )
    return tuple(out.values())


def _ontvanger(bg: Organisatie | None, ui: Organisatie | None, own_oins: Collection[str]) -> Organisatie | None:
    """Our side: the bevoegd gezag if it is ours, else the uitvoerende instantie if that is ours, else the
    bevoegd gezag (a verzoek for nobody we know; routing will refuse it)."""
    if bg is not None and bg.oin in own_oins:
        return bg
    if ui is not None and ui.oin in own_oins:
        return ui
    return bg


def parse_stam_verzoek(
    el: etree._Element,
    own_oins: Collection[str],
    bijlage_bestanden: BijlageBestanden | None = None,
) -> Verzoek:
    """Translate a STAM ``verzoek`` element as it is, without checks (``read_stam_verzoek`` checks first).
    ``own_oins``: the OINs we act for (bevoegd gezag and/or behandeldienst). ``bijlage_bestanden``:
    documentId -> (file-store path, size, sha256) of the documents already downloaded; others get
    ``bestand=None`` (not here yet). A doel that is none of the four is a KeyError."""
    if not _is_verzoek(el):
        raise ValueError(f"not a STAM verzoek: {el.tag}")
    bg = _organisatie(el.find(_x("V:bevoegdGezag")))
    ui = _organisatie(el.find(_x("V:uitvoerendeInstantie")))
    volgnummer = _t(el, "V:volgnummer")
    specs = _specificatie_elementen(el)
    return Verzoek(
        bron="stam",
        bericht="verzoek",
        soort=DOEL_SOORT[_t(el, "V:doel") or ""],
        nummer=_t(el, "V:verzoeknummer") or "",
        bevoegd_gezag=bg,
        ontvanger=_ontvanger(bg, ui, own_oins),
        volgnummer=int(volgnummer) if volgnummer and volgnummer.isdigit() else None,
        referentie=f"{_t(el, 'V:verzoeknummer') or ''}/{volgnummer or ''}",
        type=_t(el, "V:type"),
        omschrijving=_t(el, "V:naam"),
        datum=_datum(_t(el, "V:indiendatum")),
        uitvoerende_instantie=ui,
        initiatiefnemer=_persoon(el.find(_x("V:initiatiefnemer"))),
        gemachtigde=_persoon(el.find(_x("V:gemachtigde"))),
        locaties=_locaties(el),
        activiteiten=tuple(
            Activiteit(_t(a, "V:activiteitId") or "", _t(a, "V:activiteitNaam"))
            for a in el.findall(_x("V:projectactiviteiten/V:projectactiviteit"))
        ),
        specificaties=_specificaties(specs),
        bijlagen=_bijlagen(el, specs, bijlage_bestanden),
        bron_xml=etree.tostring(el),
    )


def with_pdf(verzoek: Verzoek, bestand: tuple[str, int, str] | None = None, bestandsnaam: str | None = None) -> Verzoek:
    """The verzoek with its own PDF (the summary the behandelaar reads) as the last bijlage: id
    ``pdf-<volgnummer>`` (each version has its own), documenttype ``PDF_DOCUMENTTYPE``, application/pdf.
    ``bestand``: (file-store path, size, sha256) once downloaded."""
    pdf = Bijlage(
        id=f"pdf-{verzoek.volgnummer or 1}",
        bestandsnaam=bestandsnaam or f"{verzoek.nummer}_verzoek.pdf",
        documenttype=PDF_DOCUMENTTYPE,
        mime_type="application/pdf",
        bestand=bestand[0] if bestand else None,
        grootte=bestand[1] if bestand else None,
        sha256=bestand[2] if bestand else None,
    )
    return replace(verzoek, bijlagen=(*verzoek.bijlagen, pdf))


def is_kopiebericht(verzoek: Verzoek, own_oins: Collection[str]) -> bool:
    """True when the verzoek names an uitvoerende instantie that is not ours: store it, create no zaak."""
    ui = verzoek.uitvoerende_instantie
    return is_kopie(ui.oin if ui else None, own_oins)


# -- lax reading: what stops a delivery, what is only worth a warning ---------------------------------------

_XS = "{http://www.w3.org/2001/XMLSchema}"
_VERZOEKNUMMER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,39}")  # a werkmap URL path segment and zaak key
_DIGITS = {"bsn": 9, "kvkNummer": 8, "vestigingsnummer": 12, "oin": 20}


def _is_verzoek(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).localname == "verzoek"


def _digits(value: str, name: str) -> bool:
    return re.fullmatch(f"[0-9]{{{_DIGITS[name]}}}", value) is not None


@dataclass(frozen=True)
class ReadVerzoek:
    """A verzoek read laxly: the canonical ``Verzoek`` and what did not match our schema (one line each,
    naming element and line, never content)."""

    verzoek: Verzoek
    warnings: tuple[str, ...] = ()


def _identity_problems(el: etree._Element, role: str) -> list[str]:
    """Who the person is must be readable: a natuurlijk persoon by BSN (nine zeros = none known), a niet-
    natuurlijk persoon by KvK-nummer, vestigingsnummer or naam; a number given must have its digits."""
    np_ = el.find(_x("V:natuurlijkPersoon"))
    if np_ is not None:
        bsn = _t(np_, "V:bsn")
        if bsn is None:
            return [f"{role}/natuurlijkPersoon/bsn is missing"]
        return [] if _digits(bsn, "bsn") else [f"{role}/natuurlijkPersoon/bsn is not 9 digits"]
    nnp = el.find(_x("V:nietNatuurlijkPersoon"))
    if nnp is None:
        return [f"{role} is neither a natuurlijkPersoon nor a nietNatuurlijkPersoon"]
    nummers = {name: _t(nnp, f"V:{name}") for name in ("kvkNummer", "vestigingsnummer")}
    bad = [
        f"{role}/nietNatuurlijkPersoon/{name} is not {_DIGITS[name]} digits"
        for name, value in nummers.items()
        if value is not None and not _digits(value, name)
    ]
    if bad:
        return bad
    if not any(nummers.values()) and _t(nnp, "V:naam") is None:
        return [f"{role}/nietNatuurlijkPersoon has no kvkNummer, vestigingsnummer or naam"]
    return []


def essential_problems(el: etree._Element) -> list[str]:
    """What the delivery cannot do without, missing or unusable (names only): verzoeknummer, volgnummer,
    doel, bevoegdGezag/oin, and the identity of the initiatiefnemer when one is given (our schema, like
    the verzoeken the werkmap poll finds, allows a verzoek without one)."""
    if not _is_verzoek(el):
        return [f"the root element is {etree.QName(el).localname}, not verzoek"]
    problems = []
    nummer = _t(el, "V:verzoeknummer")
    if nummer is None:
        problems.append("verzoeknummer is missing")
    elif not _VERZOEKNUMMER.fullmatch(nummer):
        problems.append("verzoeknummer is not letters, digits, '-' and '_' (at most 40)")
    volgnummer = _t(el, "V:volgnummer")
    if volgnummer is None:
        problems.append("volgnummer is missing")
    elif not re.fullmatch(r"0*[1-9][0-9]{0,8}", volgnummer):
        problems.append("volgnummer is not a positive whole number")
    doel = _t(el, "V:doel")
    if doel is None:
        problems.append("doel is missing")
    elif doel not in DOEL_SOORT:
        problems.append(f"doel is none of {', '.join(DOEL_SOORT)}")
    oin = _t(el, "V:bevoegdGezag/V:oin")
    if oin is None:
        problems.append("bevoegdGezag/oin is missing")
    elif not _digits(oin, "oin"):
        problems.append("bevoegdGezag/oin is not an OIN (20 digits)")
    initiatiefnemer = el.find(_x("V:initiatiefnemer"))
    if initiatiefnemer is not None:
        problems += _identity_problems(initiatiefnemer, "initiatiefnemer")
    return problems


@cache
def _known_names() -> frozenset[str]:
    """Every element name our reconstructed schema declares, wherever."""
    tree = etree.parse(str(XSD_DIR / XSD_VERZOEK), etree.XMLParser(no_network=True, resolve_entities=False))
    return frozenset(str(e.get("name")) for e in tree.iter(f"{_XS}element") if e.get("name"))


def _path(el: etree._Element) -> str:
    names = [etree.QName(a).localname for a in (el, *el.iterancestors()) if isinstance(a.tag, str)]
    return "/".join(reversed(names))


def schema_warnings(el: etree._Element) -> list[str]:
    """Where the verzoek departs from our schema, as warnings (at most ``MAX_WARNINGS`` lines, plus one that
    counts the rest). Elements we do not know are named once each (their content is not looked into) and
    left out of a copy, as are attributes, elements of other namespaces are read by their local name; the
    copy is then validated against ``xsd/stam/verzoek.xsd`` for the rest."""
    known = _known_names()
    doc = copy.deepcopy(el)
    warnings: list[str] = []
    namespaces: dict[str, int | None] = {}
    unknown: list[etree._Element] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        q = etree.QName(node)
        where = f"line {node.sourceline}: {_path(node)}"
        if q.localname not in known:
            warnings.append(f"{where}: element not known to our schema (kept in the raw verzoek, not read)")
            unknown.append(node)
            continue
        if q.namespace != VERZOEK:
            namespaces.setdefault(q.namespace or "(no namespace)", node.sourceline)
        for name in node.attrib:
            warnings.append(f"{where}: attribute {etree.QName(name).localname!r} not known to our schema (not read)")
        node.attrib.clear()
        node.tag = f"{{{VERZOEK}}}{q.localname}"
        stack.extend(reversed([c for c in node if isinstance(c.tag, str)]))
    for node in unknown:
        parent = node.getparent()
        if parent is not None:
            parent.remove(node)
    warnings[:0] = [
        f"line {line}: elements in namespace {ns} (ours: {VERZOEK}), read by their local name"
        for ns, line in namespaces.items()
    ]
    try:
        _schemas().validate(doc)
    except SchemaInvalid as exc:
        warnings += [e.without_values() for e in exc.errors]
    if len(warnings) > MAX_WARNINGS:
        warnings = [*warnings[:MAX_WARNINGS], f"… and {len(warnings) - MAX_WARNINGS} more"]
    return warnings


@cache
def _schemas() -> SchemaSet:
    return SchemaSet()  # compiled once; SchemaSet keeps a compiled copy per thread


def read_stam_verzoek(
    el: etree._Element,
    own_oins: Collection[str],
    bijlage_bestanden: BijlageBestanden | None = None,
) -> ReadVerzoek:
    """Read a STAM verzoek laxly: ``InputError`` (permanent) naming what the delivery cannot do without,
    else the verzoek with the warnings of ``schema_warnings``."""
    problems = essential_problems(el)
    if problems:
        raise InputError(f"STAM verzoek cannot be delivered: {'; '.join(problems)}")
    return ReadVerzoek(parse_stam_verzoek(el, own_oins, bijlage_bestanden), tuple(schema_warnings(el)))
