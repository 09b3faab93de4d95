"""The fake DSO werkmap over real HTTP(S): the two-step fetch of contract §3, streamed documents with resume,
_zoek paging, the X-Oin rule, fault injection and TLS (with and without client certificates)."""

from __future__ import annotations

import hashlib
import ssl
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from adapter.loket import stam
from adapter.simulation.fake_werkmap import (
    FakeWerkmap,
    RecordedRequest,
    Transfer,
    document_bytes,
    make_self_signed_cert,
    serve_tls_in_thread,
)
from adapter.simulation.fake_zgw import serve_in_thread
from tests.conftest import FIXTURES

STAM = FIXTURES / "stam"
OIN = "00000001002564440000"
NR = "2026112300123"
BIG = "DOC-2026112300123-1"
BIG_SIZE = 5 * 1024 * 1024
P = stam.DEFAULT_BASE_PATH


@dataclass
class Served:
    fake: FakeWerkmap
    base: str
    http: httpx.Client


def _load(fake: FakeWerkmap) -> None:
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes(), {BIG: BIG_SIZE})
    for name in ("aanvullen", "intrekken", "conceptverzoek", "kopiebericht"):
        fake.add_verzoek((STAM / f"verzoek-{name}.xml").read_bytes())


@pytest.fixture
def served() -> Iterator[Served]:
    fake = FakeWerkmap(oin=OIN)
    _load(fake)
    base, stop = serve_in_thread(fake.app)
    with httpx.Client(base_url=base + P, headers={stam.OIN_HEADER: OIN}, timeout=10) as http:
        yield Served(fake, base, http)
    stop()


def _sha(document_id: str, size: int) -> str:
    digest = hashlib.sha256()
    for chunk in document_bytes(document_id, size):
        digest.update(chunk)
    return digest.hexdigest()


# -- the two-step fetch -----------------------------------------------------------------------------------


def test_referenties_latest_and_by_volgnummer(served: Served) -> None:
    r = served.http.get(stam.verzoekreferenties(NR))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    latest = r.json()
    assert (latest["verzoeknummer"], latest["volgnummer"]) == (NR, 3)
    assert latest["verzoek"]["href"] == f"{served.base}{P}{stam.samenvatting(NR)}?volgnummer=3"
    assert latest["pdf"]["href"] == f"{served.base}{P}{stam.pdf(NR)}?volgnummer=3"
    first = served.http.get(stam.verzoekreferenties(NR), params={stam.VOLGNUMMER_PARAM: 1}).json()
    assert first["volgnummer"] == 1
    assert [d["documentId"] for d in first["documenten"]] == [BIG, "DOC-2026112300123-2"]
    big, small = first["documenten"]
    assert big == {
        "documentId": BIG,
        "bestandsnaam": "bouwtekening.pdf",
        "href": f"{served.base}{P}/documenten/{BIG}",
        "sha256": _sha(BIG, BIG_SIZE),
        "grootte": BIG_SIZE,
    }
    assert small["grootte"] == served.fake.default_document_size
    aanvulling = served.http.get(stam.verzoekreferenties(NR), params={"volgnummer": 2}).json()
    assert [d["documentId"][-1] for d in aanvulling["documenten"]] == ["1", "2", "3"]


def test_hrefs_serve_the_version_they_describe(served: Served) -> None:
    refs = served.http.get(stam.verzoekreferenties(NR), params={"volgnummer": 2}).json()
    r = served.http.get(refs["verzoek"]["href"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
    assert r.content == (STAM / "verzoek-aanvullen.xml").read_bytes()
    assert served.http.get(stam.samenvatting(NR)).content == (STAM / "verzoek-intrekken.xml").read_bytes()
    pdf = served.http.get(refs["pdf"]["href"])
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    small = refs["documenten"][1]
    doc = served.http.get(small["href"])
    assert doc.status_code == 200 and doc.headers["content-type"] == "application/pdf"
    assert len(doc.content) == small["grootte"] and hashlib.sha256(doc.content).hexdigest() == small["sha256"]


def test_unknown_things_are_404_and_bad_volgnummer_400(served: Served) -> None:
    for path, params in [
        (stam.verzoekreferenties("999"), {}),
        (stam.verzoekreferenties(NR), {"volgnummer": 9}),
        (stam.samenvatting("999"), {}),
        (stam.document("DOC-nope"), {}),
        ("/verzoeken", {}),
    ]:
        r = served.http.get(path, params=params)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == stam.PROBLEM_JSON and r.json()["status"] == 404
    assert served.http.get(stam.verzoekreferenties(NR), params={"volgnummer": "x"}).status_code == 400
    assert served.http.get(stam.overdragen(NR)).status_code == 405


def test_big_document_streams_in_constant_memory(served: Served) -> None:
    served.http.get(stam.document(BIG), headers={"Range": "bytes=0-0"})  # warm up: lazy imports, mimetypes
    tracemalloc.start()
    try:
        digest, total = hashlib.sha256(), 0
        with served.http.stream("GET", stam.document(BIG)) as r:
            assert r.status_code == 200 and int(r.headers["content-length"]) == BIG_SIZE
            for chunk in r.iter_bytes():
                digest.update(chunk)
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == BIG_SIZE and digest.hexdigest() == served.fake.document_sha256(BIG) == _sha(BIG, BIG_SIZE)
    assert peak < BIG_SIZE // 4, f"peak {peak} bytes while streaming {BIG_SIZE}"


def test_range_resumes_a_cut_download(served: Served) -> None:
    served.fake.fail_next(stam.document(BIG), cut_after=1_000_000)
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), served.http.stream("GET", stam.document(BIG)) as r:
        for chunk in r.iter_bytes():
            received += chunk
    assert len(received) == 1_000_000
    r = served.http.get(stam.document(BIG), headers={"Range": f"bytes={len(received)}-"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 1000000-{BIG_SIZE - 1}/{BIG_SIZE}"
    assert int(r.headers["content-length"]) == BIG_SIZE - 1_000_000
    assert hashlib.sha256(bytes(received) + r.content).hexdigest() == _sha(BIG, BIG_SIZE)


def test_other_ranges(served: Served) -> None:
    whole = b"".join(document_bytes(BIG, BIG_SIZE, 0, 200_000))
    r = served.http.get(stam.document(BIG), headers={"Range": "bytes=70000-130000"})
    assert r.status_code == 206 and r.content == whole[70_000:130_001]
    tail = served.http.get(stam.document(BIG), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == b"".join(document_bytes(BIG, BIG_SIZE, BIG_SIZE - 10))
    bad = served.http.get(stam.document(BIG), headers={"Range": f"bytes={BIG_SIZE}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{BIG_SIZE}"
    assert served.http.get(stam.document(BIG), headers={"Range": "items=1-2"}).status_code == 200


def test_document_bytes_are_deterministic_and_position_dependent() -> None:
    size = 300_000
    whole = b"".join(document_bytes("X", size))
    assert len(whole) == size and whole == b"".join(document_bytes("X", size))
    assert b"".join(document_bytes("X", size, 12_345, 200_000)) == whole[12_345:200_000]
    assert whole[:65536] != whole[65536:131072] and whole != b"".join(document_bytes("Y", size))


# -- _zoek --------------------------------------------------------------------------------------------------


def test_zoek_pages_of_50() -> None:
    fake = FakeWerkmap(oin=OIN)
    nummers = fake.generate_verzoeken(120)
    fake.generate_verzoeken(5, bevoegd_gezag="00000001999999999000")  # not ours: never listed
    base, stop = serve_in_thread(fake.app)
    try:
        with httpx.Client(base_url=base + P, headers={stam.OIN_HEADER: OIN}) as http:
            seen = []
            for pagina in (1, 2, 3, 4):
                r = http.post(
                    stam.ZOEK, json={"vanaf": "2026-01-01", "tot": "2026-02-01", "pagina": pagina, "paginagrootte": 50}
                )
                assert r.status_code == 200, r.text
                body = r.json()
                assert (body["pagina"], body["aantalPaginas"]) == (pagina, 3)
                assert len(body["verzoeken"]) == {1: 50, 2: 50, 3: 20, 4: 0}[pagina]
                seen += body["verzoeken"]
            assert [h["verzoeknummer"] for h in seen] == nummers
            assert {(h["volgnummer"], h["doel"]) for h in seen} == {(1, "Initiëren")}
            assert seen[0]["indiendatum"] == "2026-01-05T09:00:00+01:00"
            # tot is exclusive; date-times with offsets work; default page size is the maximum
            r = http.post(stam.ZOEK, json={"vanaf": "2026-01-05T09:00:00+01:00", "tot": "2026-01-05T11:00:00+01:00"})
            assert [h["verzoeknummer"] for h in r.json()["verzoeken"]] == nummers[:2]
            assert http.post(stam.ZOEK, json={"vanaf": "2026-01-01"}).json()["aantalPaginas"] == 3
            assert http.post(stam.ZOEK, json={"vanaf": "2030-01-01"}).json() == {
                "verzoeken": [],
                "pagina": 1,
                "aantalPaginas": 0,
            }
            for bad in (
                {"vanaf": "2026-01-01", "paginagrootte": 51},
                {"vanaf": "2026-01-01", "pagina": 0},
                {"tot": "2026-01-01"},
                {"vanaf": "gisteren"},
            ):
                r = http.post(stam.ZOEK, json=bad)
                assert r.status_code == 400 and r.headers["content-type"] == stam.PROBLEM_JSON, bad
            assert http.post(stam.ZOEK, content=b"{").status_code == 400
            assert http.get(stam.ZOEK).status_code == 405
    finally:
        stop()


def test_zoek_lists_versions_including_kopieberichten(served: Served) -> None:
    body = served.http.post(stam.ZOEK, json={"vanaf": "2026-11-01", "tot": "2026-12-31"}).json()
    assert [(h["verzoeknummer"], h["volgnummer"], h["doel"]) for h in body["verzoeken"]] == [
        (NR, 1, "Initiëren"),
        ("2026112400456", 1, "Conceptverzoek"),
        ("2026112500789", 1, "Initiëren"),
        (NR, 2, "Aanvullen"),
        (NR, 3, "Intrekken"),
    ]


# -- OIN, overdragen, content checks -------------------------------------------------------------------------


def test_x_oin_is_required(served: Served) -> None:
    for headers in ({stam.OIN_HEADER: ""}, {stam.OIN_HEADER: "00000001823288444000"}):
        r = served.http.get(stam.verzoekreferenties(NR), headers=headers)
        assert r.status_code == 403 and r.headers["content-type"] == stam.PROBLEM_JSON
        assert stam.OIN_HEADER in r.json()["detail"]
    with httpx.Client(base_url=served.base + P) as bare:
        assert bare.get(stam.document(BIG)).status_code == 403
        assert bare.post(stam.ZOEK, json={"vanaf": "2026-01-01"}).status_code == 403
    assert served.fake.requests[-1] == RecordedRequest("POST", P + stam.ZOEK, 403)


def test_verzoeken_of_others_are_invisible(tmp_path: Path) -> None:
    od = FakeWerkmap(oin="00000001823288444000")
    _load(od)
    base, stop = serve_in_thread(od.app)
    try:
        with httpx.Client(base_url=base + P, headers={stam.OIN_HEADER: od.oin}) as http:
            assert http.get(stam.verzoekreferenties("2026112500789")).status_code == 200  # we are the behandeldienst
            assert http.get(stam.verzoekreferenties(NR)).status_code == 404
            assert http.get(stam.document(BIG)).status_code == 404
            hits = http.post(stam.ZOEK, json={"vanaf": "2026-11-01"}).json()["verzoeken"]
            assert [h["verzoeknummer"] for h in hits] == ["2026112500789"]
    finally:
        stop()


def test_overdragen(served: Served) -> None:
    body = {"naarOin": "00000001823288444000", "rol": "behandeldienst", "toelichting": "Uitvoering door de OD"}
    r = served.http.post(stam.overdragen(NR), json=body)
    assert r.status_code == 202
    assert served.fake.transfers == [Transfer(NR, "00000001823288444000", "behandeldienst", "Uitvoering door de OD")]
    for bad in ({**body, "rol": "adviseur"}, {**body, "naarOin": "123"}, {"rol": "bevoegdGezag"}):
        assert served.http.post(stam.overdragen(NR), json=bad).status_code == 400, bad
    assert served.http.post(stam.overdragen("999"), json=body).status_code == 404
    assert len(served.fake.transfers) == 1


def test_add_verzoek_checks_its_input() -> None:
    fake = FakeWerkmap()
    xml = (STAM / "verzoek-initieren.xml").read_bytes()
    with pytest.raises(ValueError, match="not valid against"):
        fake.add_verzoek(xml.replace(b"<vz:volgnummer>1<", b"<vz:volgnummer>nul<"))
    with pytest.raises(ValueError, match="not in the verzoek XML"):
        fake.add_verzoek(xml, {"DOC-elders": 10})
    fake.add_verzoek(xml)
    with pytest.raises(ValueError, match="already in the werkmap"):
        fake.add_verzoek(xml)


def test_notificatie_for_a_stored_version() -> None:
    fake = FakeWerkmap()
    _load(fake)
    n = stam.read_notificatie(etree.fromstring(fake.notificatie(NR, 2)))
    assert (n.verzoeknummer, n.volgnummer, n.doel, n.bevoegd_gezag_oin) == (NR, 2, "Aanvullen", OIN)
    kopie = stam.read_notificatie(etree.fromstring(fake.notificatie("2026112500789")))
    assert kopie.is_kopie({OIN}) and not kopie.is_kopie({"00000001823288444000"})


# -- fault injection -----------------------------------------------------------------------------------------


def test_fail_next_status_times_and_delay(served: Served) -> None:
    path = stam.verzoekreferenties(NR)
    served.fake.fail_next("/verzoekreferenties", times=2)
    assert [served.http.get(path).status_code for _ in range(3)] == [503, 503, 200]
    served.fake.fail_next(path, status=500)
    r = served.http.get(path)
    assert r.status_code == 500 and r.headers["content-type"] == stam.PROBLEM_JSON
    served.fake.fail_next(path, status=None, delay=0.3)
    started = time.monotonic()
    assert served.http.get(path).status_code == 200 and time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        served.fake.fail_next(path, delay=1.0)
        served.http.get(path, timeout=0.2)
    time.sleep(1.0)
    assert served.fake.pending_faults == 0
    statuses = [(q.path, q.status) for q in served.fake.requests if q.path == P + path]
    assert statuses[:4] == [(P + path, 503), (P + path, 503), (P + path, 200), (P + path, 500)]


def test_corrupt_flips_one_byte(served: Served) -> None:
    served.fake.fail_next(stam.document(BIG), corrupt=True)
    bad = served.http.get(stam.document(BIG)).content
    good = b"".join(document_bytes(BIG, BIG_SIZE))
    assert len(bad) == BIG_SIZE and hashlib.sha256(bad).hexdigest() != served.fake.document_sha256(BIG)
    assert [i for i in range(BIG_SIZE // 2 - 2, BIG_SIZE // 2 + 3) if bad[i] != good[i]] == [BIG_SIZE // 2]
    assert sum(a != b for a, b in zip(bad, good, strict=True)) == 1
    served.fake.fail_next(stam.verzoekreferenties(NR), corrupt=True)
    r = served.http.get(stam.verzoekreferenties(NR))
    with pytest.raises(ValueError):
        r.json()
    assert served.http.get(stam.document(BIG)).content == good


def test_cut_after_breaks_the_transfer(served: Served) -> None:
    served.fake.fail_next(stam.samenvatting(NR), cut_after=100)
    with pytest.raises(httpx.RemoteProtocolError):
        served.http.get(stam.samenvatting(NR))
    assert served.http.get(stam.samenvatting(NR)).status_code == 200


# -- TLS -----------------------------------------------------------------------------------------------------


def test_tls_with_self_signed_cert(tmp_path: Path) -> None:
    certfile, keyfile = make_self_signed_cert(tmp_path)
    fake = FakeWerkmap()
    _load(fake)
    base, stop = serve_tls_in_thread(fake.app, certfile, keyfile)
    try:
        assert base.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(certfile))
        with httpx.Client(base_url=base + P, headers={stam.OIN_HEADER: fake.oin}, verify=trust) as http:
            refs = http.get(stam.verzoekreferenties(NR)).json()
            assert refs["verzoek"]["href"].startswith(base)
            doc = http.get(refs["documenten"][0]["href"])
            assert hashlib.sha256(doc.content).hexdigest() == refs["documenten"][0]["sha256"]
        with pytest.raises(httpx.ConnectError), httpx.Client(verify=ssl.create_default_context()) as untrusting:
            untrusting.get(base + P + stam.verzoekreferenties(NR))
    finally:
        stop()


def test_mutual_tls(tmp_path: Path) -> None:
    certfile, keyfile = make_self_signed_cert(tmp_path, name="server")
    client_cert, client_key = make_self_signed_cert(tmp_path, name="client", oin=OIN)
    fake = FakeWerkmap()
    _load(fake)
    base, stop = serve_tls_in_thread(fake.app, certfile, keyfile, client_ca=client_cert)
    try:
        url = base + P + stam.samenvatting(NR)
        anonymous = ssl.create_default_context(cafile=str(certfile))
        with pytest.raises(httpx.HTTPError), httpx.Client(verify=anonymous) as http:
            http.get(url, headers={stam.OIN_HEADER: OIN})
        with_cert = ssl.create_default_context(cafile=str(certfile))
        with_cert.load_cert_chain(client_cert, client_key)
        with httpx.Client(verify=with_cert) as http:
            assert http.get(url, headers={stam.OIN_HEADER: OIN}).status_code == 200
    finally:
        stop()
