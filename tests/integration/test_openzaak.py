"""Delivery against the real Open Zaak 1.21.0 (the reference ZGW implementation), installed and started by
``tests/integration/openzaak_server.py`` once per test run, with a catalogus seeded through its ORM
(``tests/integration/seed.py``). Every delivery kind goes through the real adapter code: the inbound
channel, the store, the outbox (``drain``, workers=0) or ``serve`` as a subprocess. What Open Zaak holds
afterwards is read back through its APIs and compared field by field with the calls the mapping asked
for (``Target.preview``, the code behind ``mappings preview``)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from adapter.config import load_settings
from adapter.services import Services, open_services
from adapter.store.db import upgrade
from adapter.targets.base import Call
from tests.conftest import FIXTURES, ROOT, drop_database, free_port, new_database_url, write_config
from tests.delivery_env import copy_mappings, wait_for
from tests.integration.conftest import delivery_toml
from tests.integration.openzaak_server import OpenZaak
from tests.soap import fixture, with_reference

# the first test of a run may install Open Zaak (a few minutes cold); .ci/run installs it beforehand
pytestmark = pytest.mark.timeout(900)
LVO = FIXTURES / "stuf-lvo"
STAM = FIXTURES / "stam"
TEKENING_B64 = (
    b"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
)
_NUMMERS = itertools.count(3000001)  # Open Zaak lives for the whole run: every test its own aanvraagnummer


def new_nummer() -> str:
    return str(next(_NUMMERS))


def message(name: str, nummer: str, body: bytes | None = None) -> bytes:
    """A contract example with its aanvraagnummer (and the bijlage ids and file names made of it) replaced,
    and a fresh referentienummer."""
    raw = re.sub(rb"(?<!\d)1234567(?!\d)", nummer.encode(), body or fixture(name))
    return with_reference(raw, uuid.uuid4().hex[:30])


# -- Open Zaak, read back -----------------------------------------------------------------------------------


class OzReader:
    def __init__(self, oz: OpenZaak) -> None:
        self.oz = oz
        self.http = httpx.Client(timeout=30)

    def get(self, url: str, **params: Any) -> Any:
        r = self.http.get(url, params=params, headers=self.oz.headers())
        assert r.status_code == 200, (url, r.status_code, r.text[:500])
        return r.json()

    def list_all(self, component: str, resource: str, **params: Any) -> list[dict[str, Any]]:
        page: Any = self.get(f"{self.oz.api(component)}/{resource}", **params)
        if isinstance(page, list):
            return page
        items = list(page["results"])
        while page.get("next"):
            page = self.get(page["next"])
            items += page["results"]
        return items

    def zaken(self, identificatie: str) -> list[dict[str, Any]]:
        return self.list_all("zaken", "zaken", identificatie=identificatie)

    def zaak(self, identificatie: str) -> dict[str, Any]:
        found = self.zaken(identificatie)
        assert len(found) == 1, f"{len(found)} zaken {identificatie}"
        return found[0]

    def of_zaak(self, resource: str, zaak: dict[str, Any]) -> list[dict[str, Any]]:
        return self.list_all("zaken", resource, zaak=zaak["url"])

    def documents(self, zaak: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.get(z["informatieobject"]) for z in self.of_zaak("zaakinformatieobjecten", zaak)]

    def document(self, identificatie: str) -> list[dict[str, Any]]:
        return self.list_all("documenten", "enkelvoudiginformatieobjecten", identificatie=identificatie)

    def download(self, doc: dict[str, Any]) -> bytes:
        r = self.http.get(doc["inhoud"], headers=self.oz.headers())
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r.content

    def name(self, url: str) -> str:
        return str(self.get(url)["omschrijving"])


# -- the adapter, in-process --------------------------------------------------------------------------------


@dataclass
class Env:
    sv: Services
    oz: OpenZaak
    catalogus: dict[str, Any]
    mappings: Path
    oz_read: OzReader

    @property
    def mapping(self) -> Path:
        return self.mappings / "voorbeeldstad.toml"

    def edit_mapping(self, old: str, new: str) -> None:
        t = self.mapping.read_text()
        assert old in t, old
        self.mapping.write_text(t.replace(old, new))

    def receive(self, raw: bytes) -> int:
        """Accept a StUF-LVO message through the real inbound channel (as the SOAP endpoint does)."""
        from adapter.inbound.stuf_lvo import StufLvoChannel

        channel = StufLvoChannel(self.sv.settings, self.sv.writer, self.sv.schemas)
        channel.accept(channel.receive(raw, uuid.uuid4().hex))
        with self.sv.engine.connect() as conn:
            return int(conn.execute(text("SELECT max(id) FROM messages")).scalar_one())

    def drain(self, rounds: int = 200) -> list[str]:
        from tests.test_delivery_zgw import drain

        return drain(self.sv, rounds=rounds)

    def last_error(self) -> str:
        with self.sv.engine.connect() as conn:
            return conn.execute(text("SELECT last_error FROM deliveries ORDER BY id DESC")).scalars().first() or ""

    def planned(self, raw: bytes) -> list[Call]:
        """The calls the mapping asks for (what ``mappings preview`` prints), bodies unmasked."""
        from adapter.loket.lvo_parse import parse_verzoek
        from adapter.loket.stam_parse import read_stam_verzoek, with_pdf
        from adapter.mapping.engine import build_opdracht
        from adapter.mapping.loader import load_dir
        from adapter.services import own_oins
        from adapter.validation import message_of
        from adapter.xmlsafe import Limits, parse

        root = message_of(parse(raw, Limits()))
        if root.tag.endswith("}verzoek"):  # a STAM verzoek, as the werkmap hands it out
            verzoek = with_pdf(read_stam_verzoek(root, own_oins(self.sv.settings)).verzoek)
        else:
            verzoek = parse_verzoek(root, self.sv.settings.stuf.ontvangers[0].organisatie)
        opdracht = build_opdracht(load_dir(self.mappings), verzoek)
        return self.sv.targets[opdracht.target].preview(opdracht)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "adapter", "--config", self.sv.settings.source, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture
def make_env(tmp_path: Path, openzaak: OpenZaak, catalogus: dict[str, Any]) -> Iterator[Callable[..., Env]]:
    opened: list[tuple[Services, str]] = []

    def make(*, target_extra: str = "", extra_toml: str = "", **delivery: object) -> Env:
        url = new_database_url(tmp_path)
        mappings = copy_mappings(tmp_path)
        toml = delivery_toml(openzaak, catalogus["catalogus"], mappings, target_extra=target_extra, **delivery)
        sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999, toml + extra_toml)))
        upgrade(sv.engine)
        opened.append((sv, url))
        return Env(sv, openzaak, catalogus, mappings, OzReader(openzaak))

    yield make
    for sv, url in opened:
        sv.close()
        drop_database(url)


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


# -- field by field -----------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"^<(\S+) (.+)>$")
VOLATILE = {"datumStatusGezet", "inhoud", "registratiedatum", "creatiedatum"}


def compare(asked: Any, got: Any, path: str, out: list[str]) -> None:
    """Every field the mapping asked for must be in Open Zaak's answer with that value (placeholders for
    URLs the delivery resolves are checked by name elsewhere; coordinates to 1e-6)."""
    if isinstance(asked, dict):
        if not isinstance(got, dict):
            out.append(f"{path}: asked an object, Open Zaak holds {got!r}")
            return
        for k, v in asked.items():
            if k in VOLATILE:
                continue
            if k not in got:
                out.append(f"{path}.{k}: asked {v!r}, missing in Open Zaak's answer")
                continue
            compare(v, got[k], f"{path}.{k}", out)
    elif isinstance(asked, list):
        if not isinstance(got, list) or len(got) != len(asked):
            out.append(f"{path}: asked {asked!r}, Open Zaak holds {got!r}")
            return
        for i, (a, g) in enumerate(zip(asked, got, strict=True)):
            compare(a, g, f"{path}[{i}]", out)
    elif isinstance(asked, str) and PLACEHOLDER.match(asked):
        return
    elif isinstance(asked, float) or (isinstance(got, float) and isinstance(asked, int)):
        if not isinstance(got, int | float) or abs(asked - got) > 1e-6:
            out.append(f"{path}: asked {asked!r}, Open Zaak holds {got!r}")
    elif asked != got:
        out.append(f"{path}: asked {asked!r}, Open Zaak holds {got!r}")


def placeholder(value: str) -> tuple[str, str]:
    m = PLACEHOLDER.match(value)
    assert m, value
    return m.group(1), m.group(2)


def assert_as_planned(e: Env, raw: bytes, *, skip_steps: tuple[str, ...] = (), only: bool = True) -> dict[str, Any]:
    """Read back every object the planned calls make and compare it field by field. Returns the zaak.
    ``only``: the zaak holds nothing else (no follow-up delivered yet)."""
    calls = [c for c in e.planned(raw) if not c.step.startswith(skip_steps)]
    r = e.oz_read
    mismatches: list[str] = []
    zaak_call = next(c for c in calls if c.step.startswith("zaak:"))
    zaak = r.zaak(zaak_call.body["identificatie"])
    compare(zaak_call.body, zaak, "zaak", mismatches)
    # the zaaktype: the version valid on the startdatum, published, although Open Zaak lists newest first
    identificatie = placeholder(zaak_call.body["zaaktype"])[1]
    versions = [z for z in e.catalogus["zaaktypen"] if z["identificatie"] == identificatie]
    valid = [
        z
        for z in versions
        if not z["concept"]
        and z["beginGeldigheid"] <= zaak["startdatum"]
        and (not z["eindeGeldigheid"] or zaak["startdatum"] <= z["eindeGeldigheid"])
    ]
    assert len(valid) == 1, versions
    assert zaak["zaaktype"] == valid[0]["url"], f"zaaktype {zaak['zaaktype']}, current version {valid[0]['url']}"

    rollen = r.of_zaak("rollen", zaak)
    for c in (c for c in calls if c.step.startswith("rol:")):
        mine = [x for x in rollen if x["roltoelichting"] == c.body["roltoelichting"]]
        assert len(mine) == 1, (c.step, rollen)
        compare(c.body, mine[0], c.step, mismatches)
        roltype = r.get(mine[0]["roltype"])
        wanted = placeholder(c.body["roltype"])[1]
        assert wanted in (roltype["omschrijving"], roltype["omschrijvingGeneriek"]), (c.step, roltype)
        assert roltype["zaaktype"] == zaak["zaaktype"]

    objecten = r.of_zaak("zaakobjecten", zaak)
    for c in (c for c in calls if c.step.startswith("zaakobject:")):
        mine = [
            o for o in objecten if o["objectType"] == c.body["objectType"] and _sub(c.body["objectIdentificatie"], o)
        ]
        assert len(mine) == 1, (c.step, objecten)
        compare(c.body, mine[0], c.step, mismatches)

    zios = r.of_zaak("zaakinformatieobjecten", zaak)
    for c in (c for c in calls if c.step.startswith("document:")):
        docs = r.document(c.body["identificatie"])
        assert len(docs) == 1, (c.step, docs)
        doc = docs[0]
        compare(c.body, doc, c.step, mismatches)
        assert doc["locked"] is False, c.step
        assert r.name(doc["informatieobjecttype"]) == placeholder(c.body["informatieobjecttype"])[1]
        if "inhoud" in c.body:
            assert r.download(doc) == base64.b64decode(c.body["inhoud"]), c.step
        assert [z["informatieobject"] for z in zios].count(doc["url"]) == 1, (c.step, zios)
    if only:
        assert len(zios) == len([c for c in calls if c.step.startswith("zio:")]), zios
        assert len(rollen) == len([c for c in calls if c.step.startswith("rol:")]), rollen
        assert len(objecten) == len([c for c in calls if c.step.startswith("zaakobject:")]), objecten

    statussen = r.of_zaak("statussen", zaak)
    for c in (c for c in calls if c.step.startswith("status:")):
        mine = [s for s in statussen if s["statustoelichting"] == c.body["statustoelichting"]]
        assert len(mine) == 1, (c.step, statussen)
        compare(c.body, mine[0], c.step, mismatches)
        st = r.get(mine[0]["statustype"])
        assert placeholder(c.body["statustype"])[1] in (str(st["volgnummer"]), st["omschrijving"]), st
    assert not mismatches, "\n".join(mismatches)
    return zaak


def _sub(asked: dict[str, Any], obj: dict[str, Any]) -> bool:
    out: list[str] = []
    compare(asked, obj.get("objectIdentificatie"), "", out)
    return not out


# -- the tests ---------------------------------------------------------------------------------------------


def test_the_example_aanvraag_arrives_as_the_mapping_asked(env: Env) -> None:
    """Zaak (current zaaktype version although Open Zaak lists newest first, identificatie, omschrijving,
    toelichting, startdatum, vertrouwelijkheidaanduiding, kenmerken, geometrie), rollen (roltype
    "Gemachtigde", not "Belanghebbende"), zaakobjecten, documents (type, titel, bestandsnaam, bytes),
    zaakinformatieobjecten and the start status: each field as the mapping asked."""
    nummer = new_nummer()
    raw = message("omvDi01AanbiedenAanvraag", nummer)
    mid = env.receive(raw)
    assert env.drain() == ["done"], env.last_error()
    zaak = assert_as_planned(env, raw)
    r = env.oz_read
    assert zaak["identificatie"] == f"OLO-{nummer}"
    assert zaak["kenmerken"] == [{"kenmerk": nummer, "bron": "Omgevingsloket"}]
    assert zaak["startdatum"] == "2026-11-23"
    assert zaak["vertrouwelijkheidaanduiding"] == "openbaar"  # profile regulier
    assert zaak["omschrijving"] == "Plaatsen van een dakkapel aan de voorzijde"
    assert zaak["toelichting"] == f"Reguliere procedure — verzoek {nummer} via het Omgevingsloket"
    rollen = {r.name(x["roltype"]): x for x in r.of_zaak("rollen", zaak)}
    assert set(rollen) == {"Aanvrager", "Gemachtigde"}  # never "Belanghebbende"
    assert rollen["Aanvrager"]["betrokkeneIdentificatie"]["inpBsn"] == "999993653"
    assert rollen["Gemachtigde"]["betrokkeneType"] == "vestiging"
    assert rollen["Gemachtigde"]["betrokkeneIdentificatie"]["vestigingsNummer"] == "000012345678"
    docs = {d["bestandsnaam"]: d for d in r.documents(zaak)}
    assert sorted(docs) == [f"{nummer}_Bouwtekening.pdf", f"{nummer}_Foto_voorgevel.jpg"]
    assert r.name(docs[f"{nummer}_Bouwtekening.pdf"]["informatieobjecttype"]) == "Tekening"
    assert r.name(docs[f"{nummer}_Foto_voorgevel.jpg"]["informatieobjecttype"]) == "Foto"
    assert r.download(docs[f"{nummer}_Bouwtekening.pdf"]) == base64.b64decode(TEKENING_B64)
    [status] = r.of_zaak("statussen", zaak)
    assert r.name(status["statustype"]) == "Ontvangen"
    with env.sv.engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM messages WHERE id=:i"), {"i": mid}).scalar_one() == "delivered"


def test_aanvulling_advies_and_wijziging_gemachtigde_land_on_the_zaak(env: Env) -> None:
    nummer = new_nummer()
    aanvraag = message("omvDi01AanbiedenAanvraag", nummer)
    follow_ups = [
        message(n, nummer) for n in ("vrgDi01IndienenAanvulling", "vrgDi01VoegAdviesToe", "vrgDi01WijzigGemachtigde")
    ]
    env.receive(aanvraag)
    for raw in follow_ups:
        env.receive(raw)
    states = env.drain()
    assert states.count("done") == 4, (states, env.last_error())
    r = env.oz_read
    [zaak] = r.zaken(f"OLO-{nummer}")
    assert_as_planned(env, aanvraag, only=False)
    for raw in follow_ups:  # every call each follow-up asked for, read back field by field
        _assert_follow_up(env, raw, zaak)
    docs = r.documents(zaak)
    names = sorted(d["bestandsnaam"] for d in docs)
    assert f"{nummer}_Bouwtekening_v2.pdf" in names, names
    assert len(names) >= 4, names  # aanvraag 2 + aanvulling + advies
    assert all(d["locked"] is False for d in docs)
    gemachtigden = [x for x in r.of_zaak("rollen", zaak) if r.name(x["roltype"]) == "Gemachtigde"]
    assert len(gemachtigden) == 2, gemachtigden  # the aanvraag's and the wijziging's
    assert any(x["betrokkeneIdentificatie"].get("inpBsn") == "999990032" for x in gemachtigden)


def _assert_follow_up(e: Env, raw: bytes, zaak: dict[str, Any]) -> None:
    """A follow-up's calls (documents, rollen, statussen) read back field by field."""
    r = e.oz_read
    mismatches: list[str] = []
    calls = e.planned(raw)
    assert calls, "the follow-up plans no call"
    for c in calls:
        if c.step.startswith("document:"):
            [doc] = r.document(c.body["identificatie"])
            compare(c.body, doc, c.step, mismatches)
            assert doc["locked"] is False
            assert r.name(doc["informatieobjecttype"]) == placeholder(c.body["informatieobjecttype"])[1]
            if "inhoud" in c.body:
                assert r.download(doc) == base64.b64decode(c.body["inhoud"])
            assert doc["url"] in [z["informatieobject"] for z in r.of_zaak("zaakinformatieobjecten", zaak)]
        elif c.step.startswith("rol:"):
            mine = [x for x in r.of_zaak("rollen", zaak) if x["roltoelichting"] == c.body["roltoelichting"]]
            assert len(mine) == 1, c.step
            compare(c.body, mine[0], c.step, mismatches)
            assert r.name(mine[0]["roltype"]) == placeholder(c.body["roltype"])[1] or placeholder(c.body["roltype"])[
                1
            ] in (r.get(mine[0]["roltype"])["omschrijvingGeneriek"],)
        elif c.step.startswith("status:"):
            mine = [s for s in r.of_zaak("statussen", zaak) if s["statustoelichting"] == c.body["statustoelichting"]]
            assert len(mine) == 1, c.step
            compare(c.body, mine[0], c.step, mismatches)
    assert not mismatches, "\n".join(mismatches)


def test_an_intrekking_to_the_eindstatus_ends_the_zaak_with_its_resultaat(env: Env) -> None:
    env.edit_mapping(
        'statustype_intrekking = "Ingetrokken"         # …or by omschrijving\n# resultaattype_intrekking',
        'statustype_intrekking = "Afgehandeld"\nresultaattype_intrekking',
    )
    nummer = new_nummer()
    env.receive(message("omvDi01AanbiedenAanvraag", nummer))
    intrekking = message("vrgDi01IntrekkenAanvraag", nummer)
    env.receive(intrekking)
    assert env.drain() == ["done", "done"], env.last_error()
    r = env.oz_read
    zaak = r.zaak(f"OLO-{nummer}")
    _assert_follow_up(env, intrekking, zaak)
    assert zaak["einddatum"] is not None
    assert zaak["resultaat"], zaak
    resultaat = r.get(zaak["resultaat"])
    assert r.name(resultaat["resultaattype"]) == "Ingetrokken"
    statussen = sorted(r.of_zaak("statussen", zaak), key=lambda s: s["datumStatusGezet"])
    assert [r.name(s["statustype"]) for s in statussen] == ["Ontvangen", "Afgehandeld"]
    assert zaak["status"] == statussen[-1]["url"]


def test_a_stam_verzoek_from_the_werkmap(make_env: Callable[..., Env], werkmap: tuple[Any, str]) -> None:
    from adapter.inbound.stam import StamChannel
    from tests.test_stam_e2e import documents_of, werkmap_toml

    fake, url = werkmap
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    e = make_env(extra_toml=werkmap_toml(url))
    channel = StamChannel(e.sv.settings, e.sv.writer, e.sv.schemas)
    answer = channel.receive((STAM / "verzoeknotificatie-initieren.xml").read_bytes(), uuid.uuid4().hex)
    assert answer.status == 202, answer.body
    assert e.drain() == ["done"], e.last_error()
    r = e.oz_read
    assert_as_planned(e, (STAM / "verzoek-initieren.xml").read_bytes())  # field by field, as for StUF-LVO
    zaak = r.zaak("OLO-2026112300123")
    assert r.get(zaak["zaaktype"])["identificatie"] == "ZT-OMV-REG"
    assert zaak["zaaktype"] == next(
        z["url"]
        for z in e.catalogus["zaaktypen"]
        if z["identificatie"] == "ZT-OMV-REG" and z["beginGeldigheid"] == "2024-01-01"
    )
    docs = r.documents(zaak)
    ids = documents_of("initieren")
    assert len(docs) == len(ids) + 1  # + the verzoek's own PDF
    for d in docs:
        assert d["locked"] is False
        body = r.download(d)
        doc_id = next((i for i in ids if d["identificatie"].endswith(i)), None)
        if doc_id is None:
            assert r.name(d["informatieobjecttype"]) == "Aanvraag"  # the verzoek PDF (verzoek-pdf → Aanvraag)
        else:
            assert hashlib.sha256(body).hexdigest() == fake.document_sha256(doc_id)
    rollen = r.of_zaak("rollen", zaak)
    assert any(r.name(x["roltype"]) == "Aanvrager" for x in rollen)
    assert len(r.of_zaak("statussen", zaak)) == 1


BIG = bytes(range(256)) * 64 + b"end"  # 16 KiB + 3: five bestandsdelen of 4096 bytes


def test_a_large_document_goes_up_in_bestandsdelen_and_arrives_whole(make_env: Callable[..., Env]) -> None:
    e = make_env(target_extra="large_file_bytes = 8192")
    nummer = new_nummer()
    raw = message(
        "omvDi01AanbiedenAanvraag",
        nummer,
        fixture("omvDi01AanbiedenAanvraag").replace(TEKENING_B64, base64.b64encode(BIG)),
    )
    e.receive(raw)
    assert e.drain() == ["done"], e.last_error()
    r = e.oz_read
    [doc] = r.document(f"{nummer}-1")
    assert doc["locked"] is False
    assert doc["bestandsomvang"] == len(BIG)
    assert len(doc["bestandsdelen"]) == 0  # completed: Open Zaak merges the parts and drops them
    assert hashlib.sha256(r.download(doc)).hexdigest() == hashlib.sha256(BIG).hexdigest()
    with e.sv.engine.connect() as conn:
        calls = " ".join(conn.execute(text("SELECT calls FROM delivery_attempts")).scalars().all())
        parts = conn.execute(text("SELECT key FROM delivery_steps WHERE key LIKE '%:deel:%'")).scalars().all()
    assert sorted(parts) == [f"document:{nummer}-1:deel:{n}" for n in range(1, 6)], parts  # 4096-byte parts
    assert calls.count("PUT ") >= 5, calls


# -- Open Zaak stopped mid-delivery -------------------------------------------------------------------------

OUTAGE_DOC = bytes(range(256)) * 400  # 100 KiB: 25 bestandsdelen, a window to stop Open Zaak in


def test_open_zaak_stopped_mid_delivery_and_started_again(
    tmp_path: Path, openzaak: OpenZaak, catalogus: dict[str, Any]
) -> None:
    """``serve`` delivers an aanvraag with a large document; while its bestandsdelen go up, Open Zaak is
    killed (SIGKILL to uwsgi: requests in flight are cut off), kept down for a few seconds and started
    again. The delivery retries and ends with exactly one zaak, every document complete and unlocked."""
    from tests.conftest import Server
    from tests.soap import post

    mappings = copy_mappings(tmp_path)
    toml = delivery_toml(
        openzaak,
        catalogus["catalogus"],
        mappings,
        target_extra="large_file_bytes = 8192",
        workers=1,
        max_attempts=100,
        backoff_max=1,
        lease_seconds=120,
    ).replace("timeout = 15", "timeout = 5")
    db_url = new_database_url(tmp_path)
    port = free_port()
    srv = Server(
        config=write_config(tmp_path / "config.toml", db_url, port, toml),
        db_url=db_url,
        port=port,
        log_path=tmp_path / "server.log",
    )
    nummer = new_nummer()
    raw = message(
        "omvDi01AanbiedenAanvraag",
        nummer,
        fixture("omvDi01AanbiedenAanvraag").replace(TEKENING_B64, base64.b64encode(OUTAGE_DOC)),
    )
    r = OzReader(openzaak)
    engine = create_engine(db_url)

    def state() -> str:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT state FROM deliveries")).scalar_one_or_none())

    def parts_done() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM delivery_steps WHERE key LIKE '%:deel:%'")).scalar_one())

    srv.start()
    try:
        assert post(srv.soap_url, raw).status == 200
        wait_for(lambda: parts_done() >= 3, timeout=120, what="the upload in bestandsdelen to be under way")
        openzaak.kill_http()
        stopped_at = parts_done()
        time.sleep(3)  # down for a while: the delivery meets connection errors and backs off
        assert state() not in ("done", "dead", "needs-attention"), state()
        openzaak.start_http()
        wait_for(lambda: state() in ("done", "dead", "needs-attention"), timeout=180, what="the delivery to settle")
        with engine.connect() as conn:
            last_error = conn.execute(text("SELECT last_error FROM deliveries")).scalar_one()
            attempts = conn.execute(text("SELECT attempts FROM deliveries")).scalar_one()
        assert state() == "done", last_error
    finally:
        srv.stop()
        engine.dispose()
        if openzaak.proc is None or openzaak.proc.poll() is not None:
            openzaak.start_http()
        drop_database(db_url)
    assert stopped_at < 25, f"the upload was complete ({stopped_at} parts) before Open Zaak was stopped"
    assert attempts >= 2, attempts  # the outage was felt
    assert len(r.zaken(f"OLO-{nummer}")) == 1
    zaak = r.zaak(f"OLO-{nummer}")
    docs = r.documents(zaak)
    assert sorted(d["bestandsnaam"] for d in docs) == [f"{nummer}_Bouwtekening.pdf", f"{nummer}_Foto_voorgevel.jpg"]
    assert all(d["locked"] is False for d in docs)
    for ident in (f"{nummer}-1", f"{nummer}-2"):
        assert len(r.document(ident)) == 1, ident  # no second document made by the retry
    tekening = next(d for d in docs if d["bestandsnaam"].endswith("Bouwtekening.pdf"))
    assert hashlib.sha256(r.download(tekening)).hexdigest() == hashlib.sha256(OUTAGE_DOC).hexdigest()
    assert len(r.of_zaak("rollen", zaak)) == 2 and len(r.of_zaak("statussen", zaak)) == 1


# -- a refused document type, the mapping fixed, messages resend --------------------------------------------


def test_a_mapping_fixed_after_a_refused_document_type_and_a_resend_give_a_correct_zaak(env: Env) -> None:
    """ZT-TRIAGE allows only Aanvraag and Bijlage. Without the triage profile's own map the Bouwtekening
    would be a "Tekening": the delivery must stop (needs-attention). The mapping is fixed, `messages
    resend` run: one zaak, every document of an allowed type, no wrongly typed document left linked."""
    fixed = env.mapping.read_text()
    env.edit_mapping('informatieobjecttypen = { "*" = "Bijlage" }', "")
    nummer = new_nummer()
    body = fixture("omvDi01AanbiedenAanvraag").replace(b"dakkapel-plaatsen", b"iets-onbekends")
    mid = env.receive(message("omvDi01AanbiedenAanvraag", nummer, body))
    assert env.drain() == ["needs-attention"]
    first_error = env.last_error()
    assert "Tekening" in first_error, first_error
    r = env.oz_read
    before = {"zaken": len(r.zaken(f"OLO-{nummer}")), "documents": len(r.document(f"{nummer}-1"))}

    env.mapping.write_text(fixed)
    out = env.cli("messages", "resend", str(mid))
    print(f"first attempt: {first_error}\nOpen Zaak then held: {before}\nresend: {out.stdout}{out.stderr}")
    assert out.returncode == 0, out.stdout + out.stderr
    zaak = r.zaak(f"OLO-{nummer}")
    assert r.get(zaak["zaaktype"])["identificatie"] == "ZT-TRIAGE"
    docs = r.documents(zaak)
    types = sorted(r.name(d["informatieobjecttype"]) for d in docs)
    assert len(docs) == 2 and set(types) <= {"Aanvraag", "Bijlage"}, (types, before, first_error)
    for ident in (f"{nummer}-1", f"{nummer}-2"):
        made = r.document(ident)
        assert len(made) == 1, (ident, [r.name(d["informatieobjecttype"]) for d in made])


def test_a_resend_after_a_mapping_fix_replaces_a_document_of_the_old_type(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt made both documents (the Bouwtekening as a "Tekening") and was then refused at
    the start status (a 400 injected into the adapter's client: the realistic refusal — a type the zaaktype
    does not allow — is now stopped before any document is made, see the test above). The mapping is changed
    to "Bijlage" and `messages resend` run (a separate process, no injection): Open Zaak must end with one
    zaak whose Bouwtekening is a Bijlage, the Tekening neither linked nor left behind."""
    from adapter.errors import TargetRefused

    client = env.sv.targets["zaaksysteem"].client  # type: ignore[attr-defined]
    real_post = client.post

    def refuse_status(url: str, body: dict[str, Any]) -> Any:
        if url.rstrip("/").endswith("/statussen"):
            raise TargetRefused(f"POST {url}: 400 (injected)", status=400)
        return real_post(url, body)

    monkeypatch.setattr(client, "post", refuse_status)
    nummer = new_nummer()
    mid = env.receive(message("omvDi01AanbiedenAanvraag", nummer))
    assert env.drain() == ["needs-attention"]
    r = env.oz_read
    [old] = r.document(f"{nummer}-1")
    assert r.name(old["informatieobjecttype"]) == "Tekening"

    env.edit_mapping('Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    out = env.cli("messages", "resend", str(mid))
    print(out.stdout + out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "vervangen door" in out.stdout, out.stdout
    zaak = r.zaak(f"OLO-{nummer}")
    docs = r.documents(zaak)
    names = {d["bestandsnaam"]: r.name(d["informatieobjecttype"]) for d in docs}
    assert names == {f"{nummer}_Bouwtekening.pdf": "Bijlage", f"{nummer}_Foto_voorgevel.jpg": "Foto"}, names
    assert all(d["locked"] is False for d in docs)
    tekening = next(d for d in docs if d["bestandsnaam"].endswith("Bouwtekening.pdf"))
    assert r.download(tekening) == base64.b64decode(TEKENING_B64)
    gone = r.http.get(old["url"], headers=env.oz.headers())
    assert gone.status_code == 404, (gone.status_code, gone.text[:300])  # the Tekening deleted, not orphaned
    assert len(r.of_zaak("statussen", zaak)) == 1


# -- the ketensimulatie against the real Open Zaak ----------------------------------------------------------


def test_the_delivery_scenarios_run_against_open_zaak_with_target_config(
    tmp_path: Path, openzaak: OpenZaak, catalogus: dict[str, Any]
) -> None:
    """How a supplier runs the shipped scenarios against an acceptance zaaksysteem (issue 11): ``simulate
    --target config`` with a config whose target is the real Open Zaak. Its lists come newest first, unlike the
    fake's: the scenarios choose items by field, so they pass all the same; what the mapping made (zaak fields,
    rollen, statussen, document types and bytes) is read back through Open Zaak's APIs."""
    from tests.test_simulate import SCENARIOS, junit_cases

    # workers = 0 in this config (the suite drains by hand): the simulation's own adapter delivers all the same
    config = write_config(
        tmp_path / "config.toml",
        f"sqlite:///{tmp_path / 'unused.db'}",
        free_port(),
        delivery_toml(openzaak, catalogus["catalogus"], copy_mappings(tmp_path)),
    )
    chosen = ["aanvraag-delivered", "aanvulling-after-aanvraag", "intrekking", "wijzig-gemachtigde", "triage"]
    r = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(config), "simulate", "--target", "config",
         *(str(SCENARIOS / f"{name}.toml") for name in chosen), "--report-dir", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "5 of 5 scenarios passed" in r.stdout, r.stdout
    assert junit_cases(tmp_path / "out" / "junit.xml") == dict.fromkeys(
        ["LVO-01", "LVO-02", "LVO-04", "LVO-05", "MAP-01"]
    )
    assert not (tmp_path / "unused.db").exists()  # a throwaway store, not the config's
