"""WerkmapClient against the real fake werkmap over HTTP and HTTPS: fetch, download, resume, retries, TLS."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from structlog.testing import capture_logs

from adapter.errors import TargetError, TargetRefused
from adapter.paths import FIXTURES_DIR
from adapter.simulation.fake_zgw.server import serve_in_thread
from adapter.store.files import FileStore

fake_werkmap = pytest.importorskip("adapter.simulation.fake_werkmap")
from adapter.loket import stam  # noqa: E402
from adapter.loket.werkmap import WerkmapClient, WerkmapOptions  # noqa: E402

FakeWerkmap = fake_werkmap.FakeWerkmap
OIN = "00000001002564440000"
OTHER_OIN = "00000001234567890000"
KB = 1024


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def fake() -> FakeWerkmap:
    return FakeWerkmap(oin=OIN)


@pytest.fixture(scope="module")
def base_url(fake: FakeWerkmap) -> Iterator[str]:
    url, stop = serve_in_thread(fake.app)
    yield url + stam.DEFAULT_BASE_PATH
    stop()


def make_client(base_url: str, store: FileStore, **kw: Any) -> WerkmapClient:
    opts: dict[str, Any] = {
        "base_url": base_url,
        "oin": OIN,
        "timeout": 5,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    return WerkmapClient(WerkmapOptions(**(opts | kw)), store)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


@pytest.fixture
def client(base_url: str, store: FileStore) -> Iterator[WerkmapClient]:
    with make_client(base_url, store) as c:
        yield c


def new_verzoek(fake: FakeWerkmap, size: int = 200 * KB, docs: int = 1) -> str:
    return fake.generate_verzoeken(1, documents_per_verzoek=docs, document_size=size)[0]


def doc_requests(fake: FakeWerkmap, doc: dict[str, Any]) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(stam.document(doc["documentId"]))]


def leftovers(store: FileStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


# -- happy path ---------------------------------------------------------------------------------------------


def test_round_trip_referenties_verzoek_documents(fake: FakeWerkmap, client: WerkmapClient) -> None:
    xml = (FIXTURES_DIR / "stam" / "verzoek-initieren.xml").read_bytes()
    fake.add_verzoek(xml, {"DOC-2026112300123-1": 1_000_003, "DOC-2026112300123-2": 70 * KB})
    refs = client.referenties("2026112300123")
    assert refs["verzoeknummer"] == "2026112300123" and refs["volgnummer"] == 1
    assert [d["documentId"] for d in refs["documenten"]] == ["DOC-2026112300123-1", "DOC-2026112300123-2"]

    data = client.verzoek_xml(refs)
    root = etree.fromstring(data)
    assert root.findtext(f"{{{stam.VERZOEK}}}verzoeknummer") == "2026112300123"

    for doc in refs["documenten"]:
        path = client.download(doc)
        assert path == client.files.path_for(doc["sha256"])
        assert path.stat().st_size == doc["grootte"]
        assert sha256_of(path) == doc["sha256"] == fake.document_sha256(doc["documentId"])
    assert client.referenties("2026112300123", volgnummer=1)["volgnummer"] == 1


def test_unknown_volgnummer_is_404_at_once(fake: FakeWerkmap, client: WerkmapClient) -> None:
    nr = new_verzoek(fake)
    with pytest.raises(TargetError, match=r"^GET http://127\.0\.0\.1:\d+/.*/verzoekreferenties.*: HTTP 404"):
        client.referenties(nr, volgnummer=7)
    assert [r.status for r in fake.requests if nr in r.path] == [404]


def test_second_download_makes_no_request(fake: FakeWerkmap, client: WerkmapClient) -> None:
    doc = client.referenties(new_verzoek(fake))["documenten"][0]
    first = client.download(doc)
    before = len(fake.requests)
    assert client.download(doc) == first
    assert len(fake.requests) == before


def test_resume_after_cut_connection(fake: FakeWerkmap, client: WerkmapClient) -> None:
    doc = client.referenties(new_verzoek(fake, size=1024 * KB))["documenten"][0]
    fake.fail_next(stam.document(doc["documentId"]), cut_after=300 * KB)
    path = client.download(doc)
    assert sha256_of(path) == doc["sha256"]
    assert [r.status for r in doc_requests(fake, doc)] == [200, 206]  # the second asked Range: bytes=N-
    assert leftovers(client.files) == [path]


def test_resume_of_a_part_left_by_an_earlier_call(fake: FakeWerkmap, client: WerkmapClient) -> None:
    doc = client.referenties(new_verzoek(fake, size=500 * KB))["documenten"][0]
    fake.fail_next(stam.document(doc["documentId"]), cut_after=100 * KB, times=4)  # every attempt of one call
    with pytest.raises(TargetError, match=r"peer closed connection.*[(]4 attempts[)]$"):
        client.download(doc)
    assert client.files.partial_size(doc["sha256"]) == 400 * KB  # each attempt resumed and added 100 KiB
    assert sha256_of(client.download(doc)) == doc["sha256"]
    assert [r.status for r in doc_requests(fake, doc)] == [200, 206, 206, 206, 206]


def test_corrupt_download_is_refetched(fake: FakeWerkmap, client: WerkmapClient) -> None:
    doc = client.referenties(new_verzoek(fake, size=700 * KB))["documenten"][0]
    fake.fail_next(stam.document(doc["documentId"]), corrupt=True)
    with capture_logs() as logs:
        path = client.download(doc)
    assert sha256_of(path) == doc["sha256"]
    assert [r.status for r in doc_requests(fake, doc)] == [200, 200]  # from scratch, not resumed
    assert any("corrupt" in e["event"] and e["log_level"] == "warning" for e in logs)


def test_corrupt_twice_is_a_target_error_and_leaves_nothing(fake: FakeWerkmap, client: WerkmapClient) -> None:
    doc = client.referenties(new_verzoek(fake, size=300 * KB))["documenten"][0]
    fake.fail_next(stam.document(doc["documentId"]), corrupt=True, times=2)
    with pytest.raises(TargetError, match="corrupt download, also when fetched again: sha256"):
        client.download(doc)
    assert leftovers(client.files) == []
    assert len(doc_requests(fake, doc)) == 2


# -- retries -------------------------------------------------------------------------------------------------


def test_503_twice_then_ok_is_retried(fake: FakeWerkmap, client: WerkmapClient) -> None:
    nr = new_verzoek(fake)
    fake.fail_next(stam.verzoekreferenties(nr), status=503, times=2)
    with capture_logs() as logs:
        refs = client.referenties(nr)
    assert refs["verzoeknummer"] == nr
    assert [r.status for r in fake.requests if nr in r.path] == [503, 503, 200]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 2 and "HTTP 503" in warnings[0]["reason"]
    assert warnings[0]["attempt"] == 1 and warnings[0]["of"] == 4


def test_503_forever_is_a_target_error_naming_it(fake: FakeWerkmap, client: WerkmapClient) -> None:
    nr = new_verzoek(fake)
    fake.fail_next(stam.verzoekreferenties(nr), status=503, times=4)
    with pytest.raises(TargetError) as err:
        client.referenties(nr)
    text = str(err.value)
    assert text.startswith(f"GET {client.url(stam.verzoekreferenties(nr))}: HTTP 503")
    assert text.endswith("(4 attempts)") and "\n" not in text
    assert len([r for r in fake.requests if nr in r.path]) == 4


def test_429_is_retried_but_other_4xx_not(fake: FakeWerkmap, client: WerkmapClient) -> None:
    nr = new_verzoek(fake)
    fake.fail_next(stam.samenvatting(nr), status=429)
    refs = client.referenties(nr)
    client.verzoek_xml(refs)
    fake.fail_next(stam.samenvatting(nr), status=400)
    with pytest.raises(TargetError, match="HTTP 400"):
        client.verzoek_xml(refs)
    assert [r.status for r in fake.requests if r.path.endswith(stam.samenvatting(nr))] == [429, 200, 400]


def test_timeout_is_retried_then_ok(fake: FakeWerkmap, base_url: str, store: FileStore) -> None:
    nr = new_verzoek(fake)
    fake.fail_next(stam.verzoekreferenties(nr), status=None, delay=1.0)
    with make_client(base_url, store, timeout=0.3) as c:
        assert c.referenties(nr)["verzoeknummer"] == nr


def test_timeout_forever_is_a_target_error(fake: FakeWerkmap, base_url: str, store: FileStore) -> None:
    nr = new_verzoek(fake)
    fake.fail_next(stam.verzoekreferenties(nr), status=None, delay=1.0, times=3)
    with make_client(base_url, store, timeout=0.3, retries=2) as c, pytest.raises(TargetError) as err:
        c.referenties(nr)
    assert "verzoekreferenties: timeout (read): no answer within 0.3 s (3 attempts)" in str(err.value)


def test_connection_refused_is_one_line(store: FileStore) -> None:
    with make_client("http://127.0.0.1:9/api", store, retries=1) as c, pytest.raises(TargetError) as err:
        c.referenties("1")
    assert str(err.value).startswith("GET http://127.0.0.1:9/api/verzoeken/1/verzoekreferenties: connection error")


def test_wrong_oin_is_403_at_once(fake: FakeWerkmap, base_url: str, store: FileStore) -> None:
    nr = new_verzoek(fake)
    with make_client(base_url, store, oin=OTHER_OIN) as c, pytest.raises(TargetError, match=r"HTTP 403.*X-Oin"):
        c.referenties(nr)
    assert [r.status for r in fake.requests if nr in r.path] == [403]


# -- TLS -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(fake: FakeWerkmap, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path, Path]]:
    """HTTPS with a self-signed server cert that also demands a client cert (mTLS, as the werkmap does)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = fake_werkmap.make_self_signed_cert(d, name="server")
    client_cert, client_key = fake_werkmap.make_self_signed_cert(d, name="client", oin=OIN)
    url, stop = fake_werkmap.serve_tls_in_thread(fake.app, cert, key, client_ca=client_cert)
    yield url + stam.DEFAULT_BASE_PATH, cert, client_cert, client_key
    stop()


def test_tls_unknown_server_ca_is_a_target_error(fake: FakeWerkmap, tls: Any, store: FileStore) -> None:
    url, _cert, client_cert, client_key = tls
    c = make_client(url, store, client_cert=str(client_cert), client_key=str(client_key), retries=1)
    with c, pytest.raises(TargetError) as err:
        c.referenties(new_verzoek(fake))
    assert "verzoekreferenties: TLS error: certificate verify failed: self-signed certificate" in str(err.value)


def test_tls_with_ca_bundle_and_client_cert_works(fake: FakeWerkmap, tls: Any, store: FileStore) -> None:
    url, cert, client_cert, client_key = tls
    nr = new_verzoek(fake, size=300 * KB)
    opts = {"ca_bundle": str(cert), "client_cert": str(client_cert), "client_key": str(client_key)}
    with make_client(url, store, **opts) as c:
        refs = c.referenties(nr)
        assert refs["documenten"][0]["href"].startswith("https://127.0.0.1:")
        c.verzoek_xml(refs)
        assert sha256_of(c.download(refs["documenten"][0])) == refs["documenten"][0]["sha256"]


def test_tls_without_client_cert_is_refused(fake: FakeWerkmap, tls: Any, store: FileStore) -> None:
    url, cert, _client_cert, _client_key = tls
    with make_client(url, store, ca_bundle=str(cert), retries=0) as c, pytest.raises(TargetError) as err:
        c.referenties(new_verzoek(fake))
    assert "TLS" in str(err.value) or "connection error" in str(err.value)


def test_missing_certificate_file_is_a_target_error(tmp_path: Path, store: FileStore) -> None:
    opts = WerkmapOptions(base_url="https://127.0.0.1:9", oin=OIN, client_cert=str(tmp_path / "nope.crt"))
    assert opts.missing_files() == [f"client_cert {tmp_path / 'nope.crt'} does not exist"]
    with WerkmapClient(opts, store) as c, pytest.raises(TargetError, match="TLS setup"):
        c.referenties("1")


# -- zoek, overdragen ---------------------------------------------------------------------------------------------


def test_zoek_pages_through_all(fake: FakeWerkmap, client: WerkmapClient) -> None:
    start = datetime(2031, 3, 1, 8, 0, tzinfo=fake_werkmap.LOCAL_TZ)
    nummers = fake.generate_verzoeken(120, start=start, spacing=timedelta(minutes=10), documents_per_verzoek=0)
    before = len(fake.requests)
    hits = list(client.zoek(start, start + timedelta(days=1)))
    assert [h["verzoeknummer"] for h in hits] == nummers
    # only _zoek: a delayed answer of an earlier timeout test may still be recorded in this window
    assert [(r.method, r.status) for r in fake.requests[before:] if r.path.endswith(stam.ZOEK)] == [("POST", 200)] * 3
    assert list(client.zoek(start + timedelta(days=2), start + timedelta(days=3))) == []


def test_overdragen_is_recorded(fake: FakeWerkmap, client: WerkmapClient) -> None:
    nr = new_verzoek(fake)
    client.overdragen(nr, OTHER_OIN, "behandeldienst", "Omgevingsdienst handelt af")
    assert fake.transfers[-1] == fake_werkmap.Transfer(nr, OTHER_OIN, "behandeldienst", "Omgevingsdienst handelt af")
    with pytest.raises(ValueError, match="rol"):
        client.overdragen(nr, OTHER_OIN, "adviseur", "x")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match=r"HTTP 400.*naarOin"):
        client.overdragen(nr, "123", "bevoegdGezag", "x")


# -- answers the fake does not give (mock transport) --------------------------------------------------------------


def mocked(store: FileStore, answer: httpx.Response) -> WerkmapClient:
    c = make_client("https://werkmap.example/api", store)
    c._http = httpx.Client(transport=httpx.MockTransport(lambda _req: answer))
    return c


REFS = {"verzoeknummer": "1", "verzoek": {"href": "https://werkmap.example/api/verzoeken/1/samenvatting"}}


def test_stam_verzoek_not_valid_against_our_schema_is_still_handed_out(store: FileStore) -> None:
    # Our schema is a reconstruction: what departs from it is read laxly later (stam_parse), not refused here.
    xml = f'<vz:verzoek xmlns:vz="{stam.VERZOEK}">\n<vz:verzoeknummer>1</vz:verzoeknummer>\n<vz:bogus/></vz:verzoek>'
    assert mocked(store, httpx.Response(200, content=xml.encode())).verzoek_xml(REFS) == xml.encode()


def test_hostile_or_foreign_xml_is_refused(store: FileStore) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(TargetError, match="STAM verzoek rejected: line 1: DOCTYPE"):
        mocked(store, httpx.Response(200, content=bomb)).verzoek_xml(REFS)
    notif = f'<vn:verzoeknotificatie xmlns:vn="{stam.VERZOEKNOTIFICATIE}"/>'.encode()
    with pytest.raises(TargetError, match="expected a STAM verzoek"):
        mocked(store, httpx.Response(200, content=notif)).verzoek_xml(REFS)


def test_hrefs_to_another_host_are_refused(store: FileStore) -> None:
    c = make_client("https://werkmap.example/api", store)
    doc = {"href": "https://evil.example/x", "sha256": "ab" * 32, "grootte": 1}
    with pytest.raises(TargetError, match=r"outside https://werkmap\.example"):
        c.download(doc)
    assert c.url("/api/documenten/1") == "https://werkmap.example/api/documenten/1"
    assert c.url("/documenten/1") == "https://werkmap.example/api/documenten/1"


def test_options_are_strict() -> None:
    with pytest.raises(ValueError):
        WerkmapOptions(base_url="https://x", oin=OIN, retry=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        WerkmapOptions(base_url="ftp://x", oin=OIN)
    with pytest.raises(ValueError):
        WerkmapOptions(base_url="https://x", oin="123")
    o = WerkmapOptions(base_url="https://x", oin=OIN)
    assert (o.retries, o.backoff_initial, o.backoff_max) == (3, 1.0, 30.0)


def test_server_that_ignores_range_is_taken_from_byte_0(store: FileStore) -> None:
    data = bytes(range(256)) * 1000
    doc = {"href": "/documenten/1", "sha256": hashlib.sha256(data).hexdigest(), "grootte": len(data)}
    with store.writer(doc["sha256"], len(data)) as w:
        w.write(data[:5000])  # a part from an earlier, broken call
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Range"))
        return httpx.Response(200, content=data)

    c = make_client("https://werkmap.example/api", store)
    c._http = httpx.Client(transport=httpx.MockTransport(handler))
    assert c.download(doc).read_bytes() == data
    assert seen == ["bytes=5000-"]


def test_malformed_referenties_are_refused(store: FileStore) -> None:
    bad = {"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "../../x", "grootte": 3}]}
    with pytest.raises(TargetError, match="malformed sha256"):
        mocked(store, httpx.Response(200, json=bad)).referenties("1")
    with pytest.raises(TargetError, match="not JSON"):
        mocked(store, httpx.Response(200, content=b"<html/>")).referenties("1")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ([], "not verzoekreferenties"),
        ("referenties", "not verzoekreferenties"),
        ({"verzoeknummer": "1", "documenten": {"href": "/d/1"}}, "not verzoekreferenties"),
        ({"verzoeknummer": "1", "documenten": ["/d/1"]}, "lacks href"),
        ({"verzoeknummer": "1", "documenten": [{"href": "/d/1", "grootte": 3}]}, "lacks href"),
        ({"verzoeknummer": "1", "documenten": [{"sha256": "ab" * 32, "grootte": 3}]}, "lacks href"),
        (
            {"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "ab" * 32}]},
            "lacks href, sha256 or grootte",
        ),
        ({"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "ab" * 31, "grootte": 3}]}, "malformed"),
        ({"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "ab" * 32, "grootte": "3"}]}, "malformed"),
        ({"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "ab" * 32, "grootte": 3.0}]}, "malformed"),
        ({"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "ab" * 32, "grootte": -1}]}, "malformed"),
        ({"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "ab" * 32, "grootte": True}]}, "malformed"),
    ],
)
def test_each_malformed_referenties_answer_is_refused_not_retried(store: FileStore, answer: Any, problem: str) -> None:
    # A werkmap answer we cannot use is a refusal an operator must see (needs-attention), not a transient
    # error retried until dead, nor a crash one step later.
    with pytest.raises(TargetRefused, match=problem):
        mocked(store, httpx.Response(200, json=answer)).referenties("1")


def test_well_formed_referenties_pass_the_checks(store: FileStore) -> None:
    good = {"verzoeknummer": "1", "documenten": [{"href": "/d/1", "sha256": "AB" * 32, "grootte": 0}]}
    assert mocked(store, httpx.Response(200, json=good)).referenties("1") == good
    assert mocked(store, httpx.Response(200, json={"verzoeknummer": "1"})).referenties("1") == {"verzoeknummer": "1"}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ([], "no verzoeken list"),
        ({"verzoeken": "1"}, "no verzoeken list"),
        ({"aantalPaginas": 1}, "no verzoeken list"),
        ({"verzoeken": ["2026-0001"], "aantalPaginas": 1}, "hit 1 is not an object with a verzoeknummer"),
        ({"verzoeken": [{"volgnummer": 1}], "aantalPaginas": 1}, "hit 1 is not an object with a verzoeknummer"),
        ({"verzoeken": [{"verzoeknummer": "1"}], "aantalPaginas": "many"}, "aantalPaginas"),
    ],
)
def test_each_malformed_zoek_answer_is_refused(store: FileStore, answer: Any, problem: str) -> None:
    with pytest.raises(TargetRefused, match=problem):
        list(mocked(store, httpx.Response(200, json=answer)).zoek(datetime(2026, 1, 1), datetime(2026, 1, 2)))


def test_werkmap_redirects_are_not_followed(store: FileStore) -> None:
    # Our PKIoverheid client certificate and OIN go to the configured werkmap only: a redirect (to any
    # host) is reported, never followed. Served over real HTTP so the client's own session settings apply.
    seen: list[str] = []

    async def redirecting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 302, "headers": [(b"location", b"/elsewhere")]})
        await send({"type": "http.response.body", "body": b""})

    url, stop = serve_in_thread(redirecting)
    try:
        with make_client(url + stam.DEFAULT_BASE_PATH, store) as c, pytest.raises(TargetRefused, match="HTTP 302"):
            c.referenties("1")
    finally:
        stop()
    assert seen == [stam.DEFAULT_BASE_PATH + stam.verzoekreferenties("1")]
