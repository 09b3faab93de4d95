"""STAM verzoeken read laxly (issue 7, item 6) and the verzoek's own PDF on the zaak (item 5).

Our STAM schema is a reconstruction: a company carrying correspondentieAdres, e-mail and phone, and a verzoek
with elements we have never seen, are delivered (the second with warnings on the message, shown by
``messages show``, naming elements and never their content); a verzoek without what the delivery needs
(verzoeknummer, volgnummer, doel, bevoegd gezag, initiatiefnemer identity) goes to ``needs-attention`` on the
first attempt. The PDF the werkmap links in the verzoekreferenties becomes a document of the zaak.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import create_engine, text

from adapter.errors import InputError
from adapter.loket import stam
from adapter.loket.stam_parse import read_stam_verzoek, schema_warnings, with_pdf
from adapter.loket.werkmap import WerkmapClient, WerkmapOptions
from adapter.model import Adres
from adapter.schemas import SchemaInvalid, SchemaSet
from adapter.store.files import FileStore
from tests.conftest import FIXTURES, ROOT, Server, drop_database, make_server
from tests.delivery_env import Zaaksysteem, cli, copy_mappings, delivery_toml, needs_zgw_specs, wait_for

OIN = "00000001002564440000"
STAM = FIXTURES / "stam"
LENIENT = STAM / "lenient"


def root_of(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


def initieren(old: str = "", new: str = "") -> etree._Element:
    text_ = (STAM / "verzoek-initieren.xml").read_text(encoding="utf-8")
    assert old in text_
    return etree.fromstring(text_.replace(old, new, 1).encode())


# -- reading, in-process ------------------------------------------------------------------------------------


def test_company_with_correspondentieadres_email_and_phone_is_read() -> None:
    root = root_of(STAM / "verzoek-bedrijf.xml")
    read = read_stam_verzoek(root, {OIN})
    assert read.warnings == ()  # the shape is in our schema now (it was refused before)
    p = read.verzoek.initiatiefnemer
    assert p is not None and not p.natuurlijk
    assert (p.kvk_nummer, p.vestigingsnummer, p.naam) == ("90001234", "000045678901", "Havenkantoren B.V.")
    assert p.correspondentieadres == Adres("Havenstraat", 8, postcode="1236EF", woonplaats="Voorbeeldstad")
    assert (p.emailadres, p.telefoonnummer) == ("vergunningen@havenkantoren.example", "0107654321")


def test_what_was_read_before_is_still_read_without_warnings() -> None:
    for path in sorted(STAM.glob("verzoek-*.xml")):
        assert read_stam_verzoek(root_of(path), {OIN}).warnings == (), path.name


def test_unknown_elements_are_warnings_that_name_the_element_and_never_its_content() -> None:
    root = root_of(LENIENT / "verzoek-onbekend-element.xml")
    read = read_stam_verzoek(root, {OIN})
    assert read.warnings == (
        "line 13: verzoek/verzoekVersie: element not known to our schema (kept in the raw verzoek, not read)",
        "line 28: verzoek/initiatiefnemer/natuurlijkPersoon/geboortedatum: element not known to our schema "
        "(kept in the raw verzoek, not read)",
        "line 41: verzoek/bijzonderheden: element not known to our schema (kept in the raw verzoek, not read)",
    )
    shown = "\n".join(read.warnings)
    assert "1970-01-01" not in shown and "4.1" not in shown and "e-mail" not in shown
    v = read.verzoek  # everything we know is read as usual, the unknown stays in the raw XML
    assert (v.nummer, v.initiatiefnemer and v.initiatiefnemer.bsn, len(v.bijlagen)) == ("2026112600247", "999993653", 2)
    assert v.bron_xml is not None and b"geboortedatum" in v.bron_xml


def test_schema_deviations_are_warnings_without_values() -> None:
    root = initieren("<vz:emailadres>j.vanderberg@example.org</vz:emailadres>", "<vz:emailadres>geheim</vz:emailadres>")
    for el in root.iter(f"{{{stam.VERZOEK}}}huisnummer"):
        el.text = "een"
        el.set("soort", "x")
    for el in root.iter(f"{{{stam.VERZOEK}}}x"):
        el.text = "noord"
    warnings = schema_warnings(root)
    assert "line 34: verzoek/initiatiefnemer/natuurlijkPersoon/emailadres: value does not have the expected form " in (
        "\n".join(warnings)
    )
    assert any(w.endswith("huisnummer: attribute 'soort' not known to our schema (not read)") for w in warnings)
    assert any(w.endswith("adresAanduiding/huisnummer: value is not a valid Huisnummer") for w in warnings)
    assert any(w.endswith("rdPunt/x: value is not a valid decimal") for w in warnings)
    joined = "\n".join(warnings)
    assert "geheim" not in joined and "een" not in joined.replace("element", "") and "noord" not in joined
    v = read_stam_verzoek(root, {OIN}).verzoek  # and the delivery goes on with what it can use
    assert v.locaties[0].punt_rd is None and v.locaties[0].adres is not None and v.locaties[0].adres.huisnummer is None


def test_elements_of_another_namespace_are_read_by_local_name() -> None:
    xml = (STAM / "verzoek-initieren.xml").read_bytes().replace(stam.VERZOEK.encode(), b"urn:example:stam-v5")
    read = read_stam_verzoek(etree.fromstring(xml), {OIN})
    assert read.verzoek.nummer == "2026112300123" and len(read.verzoek.bijlagen) == 2
    assert read.warnings == (
        f"line 2: elements in namespace urn:example:stam-v5 (ours: {stam.VERZOEK}), read by their local name",
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("<vz:verzoeknummer>2026112300123</vz:verzoeknummer>", "", "verzoeknummer is missing"),
        ("<vz:verzoeknummer>2026112300123<", "<vz:verzoeknummer>../2026<", "verzoeknummer is not letters"),
        ("<vz:volgnummer>1</vz:volgnummer>", "", "volgnummer is missing"),
        ("<vz:volgnummer>1<", "<vz:volgnummer>0<", "volgnummer is not a positive whole number"),
        ("<vz:doel>Initiëren</vz:doel>", "", "doel is missing"),
        ("<vz:doel>Initiëren<", "<vz:doel>Vooroverleg<", "doel is none of Initiëren, Conceptverzoek"),
        (
            "<vz:oin>00000001002564440000</vz:oin>\n    <vz:naam>Gemeente Voorbeeldstad</vz:naam>\n  </vz:bevoegdGezag>"
            "\n  <vz:uitvoerendeInstantie>",
            "</vz:bevoegdGezag>\n  <vz:uitvoerendeInstantie>",
            "bevoegdGezag/oin is missing",
        ),
        ("<vz:bsn>999993653</vz:bsn>", "", "initiatiefnemer/natuurlijkPersoon/bsn is missing"),
        ("<vz:bsn>999993653</vz:bsn>", "<vz:bsn>99999365</vz:bsn>", "initiatiefnemer/natuurlijkPersoon/bsn is not 9"),
        ("<vz:natuurlijkPersoon>", "<vz:persoon>", "initiatiefnemer is neither a natuurlijkPersoon nor"),
    ],
)
def test_what_the_delivery_needs_stops_it_as_input_error_naming_elements_only(old: str, new: str, problem: str) -> None:
    if new == "<vz:persoon>":
        text_ = (STAM / "verzoek-initieren.xml").read_text(encoding="utf-8").replace("natuurlijkPersoon>", "persoon>")
        root = etree.fromstring(text_.encode())
    else:
        root = initieren(old, new)
    with pytest.raises(InputError, match="STAM verzoek cannot be delivered: .*" + problem) as info:
        read_stam_verzoek(root, {OIN})
    assert not info.value.transient  # needs-attention at once, not retried for hours
    assert "99999365" not in str(info.value) and "Berg" not in str(info.value)


def test_a_company_is_identified_by_kvk_vestiging_or_naam() -> None:
    bedrijf = (STAM / "verzoek-bedrijf.xml").read_text(encoding="utf-8")
    for cut in ("<vz:kvkNummer>90001234</vz:kvkNummer>", "<vz:vestigingsnummer>000045678901</vz:vestigingsnummer>"):
        bedrijf = bedrijf.replace(cut, "")
    assert read_stam_verzoek(etree.fromstring(bedrijf.encode()), {OIN}).verzoek.initiatiefnemer is not None
    nameless = bedrijf.replace("<vz:naam>Havenkantoren B.V.</vz:naam>", "")
    with pytest.raises(InputError, match="has no kvkNummer, vestigingsnummer or naam"):
        read_stam_verzoek(etree.fromstring(nameless.encode()), {OIN})
    bad_kvk = (STAM / "verzoek-bedrijf.xml").read_text(encoding="utf-8").replace(">90001234<", ">9000123<")
    with pytest.raises(InputError, match="kvkNummer is not 8 digits"):
        read_stam_verzoek(etree.fromstring(bad_kvk.encode()), {OIN})


def test_schema_errors_render_without_values() -> None:
    bad = initieren("<vz:bsn>999993653</vz:bsn>", "<vz:bsn>12345678</vz:bsn>")
    with pytest.raises(SchemaInvalid) as info:
        SchemaSet().validate(bad)
    (error,) = info.value.errors
    assert "12345678" in error.message  # libxml2 quotes the value ...
    assert error.without_values() == (  # ... we do not
        "line 21: verzoek/initiatiefnemer/natuurlijkPersoon/bsn: value does not have the expected form (pattern)"
    )


def test_with_pdf_adds_the_verzoek_pdf_as_the_last_bijlage() -> None:
    v = read_stam_verzoek(root_of(STAM / "verzoek-aanvullen.xml"), {OIN}).verzoek
    pdf = with_pdf(v, ("files/ab/abab", 10, "ab" * 32)).bijlagen[-1]
    assert (pdf.id, pdf.bestandsnaam, pdf.documenttype, pdf.mime_type) == (
        "pdf-2", "2026112300123_verzoek.pdf", "verzoek-pdf", "application/pdf",
    )  # fmt: skip
    assert (pdf.bestand, pdf.grootte, pdf.sha256, pdf.heeft_inhoud) == ("files/ab/abab", 10, "ab" * 32, True)
    assert with_pdf(v, None, "samenvatting.pdf").bijlagen[-1].bestandsnaam == "samenvatting.pdf"


# -- the werkmap client -------------------------------------------------------------------------------------


def mocked(tmp_path: Path, handler: object) -> WerkmapClient:
    options = WerkmapOptions(base_url="https://werkmap.example/api", oin=OIN, retries=1, backoff_initial=0)
    c = WerkmapClient(options, FileStore(tmp_path / "files"))
    c._http = httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return c


def test_verzoek_xml_is_not_held_to_our_schema(tmp_path: Path) -> None:
    xml = (LENIENT / "verzoek-onbekend-element.xml").read_bytes()
    refs: stam.VerzoekReferenties = {"verzoeknummer": "1", "verzoek": {"href": "https://werkmap.example/api/v/1"}}
    assert mocked(tmp_path, lambda _r: httpx.Response(200, content=xml)).verzoek_xml(refs) == xml


def test_verzoek_pdf_is_streamed_into_the_file_store(tmp_path: Path) -> None:
    body = b"%PDF-1.7\n" + bytes(range(256)) * 1000 + b"\n%%EOF\n"
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, json={"title": "busy"})  # transient: retried within the call
        headers = {"Content-Disposition": 'attachment; filename="verzoek 2026112300123.pdf"'}
        return httpx.Response(200, content=body, headers=headers)

    c = mocked(tmp_path, handler)
    refs: stam.VerzoekReferenties = {"verzoeknummer": "1", "pdf": {"href": "https://werkmap.example/api/pdf"}}
    got = c.verzoek_pdf(refs)
    assert got is not None and len(calls) == 2
    assert got.sha256 == hashlib.sha256(body).hexdigest() and got.grootte == len(body)
    assert got.path == c.files.path_for(got.sha256) and got.path.read_bytes() == body
    assert got.bestandsnaam == "verzoek 2026112300123.pdf"
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == [got.sha256]  # no temp files left
    assert c.verzoek_pdf({"verzoeknummer": "1"}) is None  # the contract makes the PDF optional
    evil = mocked(
        tmp_path, lambda _r: httpx.Response(200, content=b"x", headers={"Content-Disposition": 'x; filename="../a"'})
    )
    assert (evil.verzoek_pdf(refs) or pytest.fail()).bestandsnaam is None  # a path is not a file name


# -- end to end: notification → werkmap → zaak ------------------------------------------------------------


@pytest.fixture
def werkmap() -> Iterator[tuple[object, str]]:
    from adapter.simulation.fake_werkmap import FakeWerkmap
    from adapter.simulation.fake_zgw import serve_in_thread

    fake = FakeWerkmap(oin=OIN)
    base, stop = serve_in_thread(fake.app)
    yield fake, base + fake.base_path
    stop()


def adapter(tmp_path: Path, zs: Zaaksysteem, werkmap_url: str) -> Server:
    werkmap_toml = f"""
[werkmap]
base_url = "{werkmap_url}"
oin = "{OIN}"
timeout = 5
retries = 1
backoff_initial = 0.05

[jobs]
enabled = false
"""
    return make_server(tmp_path, extra_toml=delivery_toml(zs, copy_mappings(tmp_path)) + werkmap_toml)


def post_notificatie(srv: Server, xml: bytes) -> httpx.Response:
    return httpx.post(f"{srv.url}/stam/verzoeknotificatie", content=xml, headers={"Content-Type": "application/xml"})


def deliveries(srv: Server) -> dict[str, tuple[str, int, str | None]]:
    """verzoeknummer -> (state, attempts, last error)."""
    engine = create_engine(srv.db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT nummer, state, attempts, last_error FROM deliveries")).all()
    engine.dispose()
    return {r.nummer: (r.state, r.attempts, r.last_error) for r in rows}


def message_id(srv: Server, nummer: str) -> str:
    listed = cli(srv, "messages", "list", "--nummer", nummer).stdout.splitlines()
    return listed[1].split()[0]


def settled(srv: Server, n: int) -> bool:
    d = deliveries(srv)
    return len(d) == n and all(s in ("done", "dead", "needs-attention") for s, _, _ in d.values())


@needs_zgw_specs
def test_company_and_unknown_elements_are_delivered_and_no_verzoeknummer_needs_attention_at_once(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[object, str]
) -> None:
    fake, url = werkmap
    fake.add_verzoek((STAM / "verzoek-bedrijf.xml").read_bytes())  # type: ignore[attr-defined]
    fake.add_verzoek((LENIENT / "verzoek-onbekend-element.xml").read_bytes(), check_schema=False)  # type: ignore[attr-defined]
    fake.add_verzoek(  # type: ignore[attr-defined]
        (LENIENT / "verzoek-zonder-verzoeknummer.xml").read_bytes(), check_schema=False, verzoeknummer="2026112600248"
    )
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        for path in (
            STAM / "verzoeknotificatie-bedrijf.xml",
            LENIENT / "verzoeknotificatie-onbekend-element.xml",
            LENIENT / "verzoeknotificatie-zonder-verzoeknummer.xml",
        ):
            r = post_notificatie(srv, path.read_bytes())
            assert r.status_code == 202, r.text
        wait_for(lambda: settled(srv, 3), timeout=60, what="three deliveries to settle")
        d = deliveries(srv)
        assert d["2026112600246"][:2] == ("done", 1) and d["2026112600247"][:2] == ("done", 1)
        state, attempts, error = d["2026112600248"]
        assert (state, attempts) == ("needs-attention", 1)  # the first attempt, not the tenth
        assert error is not None and "verzoeknummer is missing" in error

        zaken = {z["identificatie"]: z for z in zs.fake.zaken}  # type: ignore[attr-defined]
        assert set(zaken) == {"OLO-2026112600246", "OLO-2026112600247"}
        company = [r for r in zs.fake.rollen if r["zaak"] == zaken["OLO-2026112600246"]["url"]]  # type: ignore[attr-defined]
        assert [(r["betrokkeneType"], r["betrokkeneIdentificatie"]["vestigingsNummer"]) for r in company] == [
            ("vestiging", "000045678901")
        ]

        shown = cli(srv, "messages", "show", message_id(srv, "2026112600247")).stdout
        assert "warnings          3" in shown, shown
        assert "  - line 13: verzoek/verzoekVersie: element not known to our schema" in shown
        assert "verzoek/initiatiefnemer/natuurlijkPersoon/geboortedatum" in shown
        assert "verzoek/bijzonderheden" in shown and "1970-01-01" not in shown
        assert "warnings" not in cli(srv, "messages", "show", message_id(srv, "2026112600246")).stdout
        stuck = cli(srv, "messages", "show", message_id(srv, "2026112600248")).stdout
        assert "needs-attention" in stuck and "verzoeknummer is missing" in stuck
        engine = create_engine(srv.db_url)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT warnings FROM messages WHERE nummer = '2026112600247'")).scalar_one()
        engine.dispose()
        assert len(json.loads(stored)) == 3
        assert "1970-01-01" not in srv.log_text()  # nor in the log
    finally:
        srv.stop()
        drop_database(srv.db_url)


@needs_zgw_specs
def test_the_verzoek_pdf_is_a_document_on_the_zaak_with_the_bytes_the_werkmap_served(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[object, str]
) -> None:
    fake, url = werkmap
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())  # type: ignore[attr-defined]
    (zonder,) = fake.generate_verzoeken(1, documents_per_verzoek=0, pdf=False)  # type: ignore[attr-defined]
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        fake_pdf = fake.pdf_bytes("2026112300123")  # type: ignore[attr-defined]
        assert post_notificatie(srv, (STAM / "verzoeknotificatie-initieren.xml").read_bytes()).status_code == 202
        wait_for(lambda: settled(srv, 1), timeout=60, what="the delivery")
        assert deliveries(srv)["2026112300123"][0] == "done"
        (zaak,) = zs.fake.zaken  # type: ignore[attr-defined]
        on_zaak = {z["informatieobject"] for z in zs.fake.zaakinformatieobjecten if z["zaak"] == zaak["url"]}  # type: ignore[attr-defined]
        pdfs = [d for d in zs.fake.documenten if d["bestandsnaam"] == "2026112300123_verzoek.pdf"]  # type: ignore[attr-defined]
        assert len(pdfs) == 1 and pdfs[0]["url"] in on_zaak and len(on_zaak) == 3  # two bijlagen and the PDF
        pdf = pdfs[0]
        assert (
            pdf["bytes"] is not None
            and hashlib.sha256(pdf["bytes"]).hexdigest() == hashlib.sha256(fake_pdf).hexdigest()
        )
        assert pdf["formaat"] == "application/pdf" and pdf["identificatie"] == "2026112300123-pdf-1"
        aanvraag = zs.fake.catalogus_url("informatieobjecttypen", omschrijving="Aanvraag")  # type: ignore[attr-defined]
        assert pdf["informatieobjecttype"] == aanvraag  # "verzoek-pdf" = "Aanvraag" in the mapping
        pdf_gets = [r for r in fake.requests if r.path.endswith("/pdf")]  # type: ignore[attr-defined]
        assert [r.status for r in pdf_gets] == [200]
        shown = cli(srv, "messages", "show", message_id(srv, "2026112300123")).stdout
        assert "werkmap:pdf" in shown  # a checkpointed step: a retry does not fetch it again

        # A version whose referenties link no PDF: nothing to add, and no warning either (it is optional).
        assert post_notificatie(srv, fake.notificatie(zonder)).status_code == 202  # type: ignore[attr-defined]
        wait_for(lambda: settled(srv, 2), timeout=60, what="the delivery without a PDF")
        assert deliveries(srv)[zonder][0] == "done"
        assert not [d for d in zs.fake.documenten if d["identificatie"].startswith(zonder)]  # type: ignore[attr-defined]
        assert "warnings" not in cli(srv, "messages", "show", message_id(srv, zonder)).stdout
    finally:
        srv.stop()
        drop_database(srv.db_url)


# -- mappings preview of a STAM verzoek file (item 9: it ended in a KeyError traceback) ----------------------


def preview(path: Path) -> subprocess.CompletedProcess[str]:
    example = ROOT / "config.example.toml"  # its mappings/ and zaaksysteem target; preview sends nothing
    return subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(example), "mappings", "preview", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mappings_preview_of_a_stam_verzoek_file() -> None:
    r = preview(STAM / "verzoek-initieren.xml")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["verzoek 2026112300123 (aanvraag) → target zaaksysteem (zgw)", "  zaaktype ZT-OMV-REG"]
    assert "  bijlage bouwtekening.pdf → Tekening (openbaar)" in lines
    assert "  bijlage 2026112300123_verzoek.pdf → Aanvraag (openbaar)" in lines  # the PDF the werkmap links
    assert any(re.search(r"POST .*/zaken/api/v1/zaken\s+\[zaak:ZT-OMV-REG\]", line) for line in lines)
    assert any(line.endswith("[document:pdf-1]") for line in lines)
    assert "999993653" not in r.stdout  # the BSN is masked, as for StUF-LVO

    unknown = preview(LENIENT / "verzoek-onbekend-element.xml")
    assert unknown.returncode == 0, unknown.stderr
    assert unknown.stdout.startswith("warning: line 13: verzoek/verzoekVersie: element not known to our schema")
    assert "1970-01-01" not in unknown.stdout

    kopie = preview(STAM / "verzoek-kopiebericht.xml")
    assert kopie.returncode == 0 and "kopiebericht" in kopie.stdout and "POST" not in kopie.stdout

    for path, says in (
        (LENIENT / "verzoek-zonder-verzoeknummer.xml", "STAM verzoek cannot be delivered: verzoeknummer is missing"),
        (STAM / "verzoeknotificatie-initieren.xml", "a verzoeknotificatie only names its verzoek"),
    ):
        refused = preview(path)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        (line,) = refused.stderr.strip().splitlines()  # one readable line
        assert line.startswith(f"error: {says}"), line
