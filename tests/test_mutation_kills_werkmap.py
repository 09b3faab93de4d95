"""The werkmap client's survivors of mutation run 8 (docs/guarantees.md): what it retries and how long it waits,
the one line an operator reads when it gives up, and the URLs it builds. Served from an ``httpx.MockTransport``
whose handler answers each request in turn, so each answer can be one the fake werkmap never gives."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.errors import TargetError, TargetRefused
from adapter.loket import stam, werkmap
from adapter.loket.werkmap import WerkmapClient, WerkmapOptions
from adapter.store.files import FileStore
from tests.logrecord import record_log

OIN = "00000001002564440000"
BASE = "https://werkmap.example/api"
REFERENTIES = f"{BASE}/verzoeken/1/verzoekreferenties"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits between attempts, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(werkmap.time, "sleep", waited.append)
    return waited


def client(store: FileStore, answers: list[httpx.Response], base: str = BASE, **kw: Any) -> WerkmapClient:
    """A client whose requests get ``answers`` in turn (the requests are recorded in ``c.seen``)."""
    opts: dict[str, Any] = {"base_url": base, "oin": OIN, "backoff_initial": 0.01, "backoff_max": 0.05}
    c = WerkmapClient(WerkmapOptions(**(opts | kw)), store)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    c._http = httpx.Client(transport=httpx.MockTransport(handler))
    c.seen = seen  # type: ignore[attr-defined]
    return c


REFS_OK = {"verzoeknummer": "1", "documenten": []}


def disk_full(*_: Any, **__: Any) -> Any:
    raise OSError(28, "No space left on device")


def assert_failures_name_the_call(store: FileStore, url: str, fetch: Callable[[WerkmapClient], object]) -> None:
    """A refusal (4xx) at once and a server error after its retries: each one line naming ``GET <url>``."""
    with pytest.raises(TargetRefused) as refused:
        fetch(client(store, [httpx.Response(404)]))
    assert str(refused.value) == f"GET {url}: HTTP 404"
    with pytest.raises(TargetError) as err:
        fetch(client(store, [httpx.Response(503)] * 2, retries=1))
    assert str(err.value) == f"GET {url}: HTTP 503 (2 attempts)"


# -- _retrying: attempts, waits, the line that gives up ---------------------------------------------------------


def test_without_retries_the_one_failure_is_reported_without_an_attempt_count(store: FileStore) -> None:
    c = client(store, [httpx.Response(503)], retries=0)
    with pytest.raises(TargetError) as err:
        c.referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: HTTP 503"
    assert err.value.transient


def test_two_attempts_are_named_in_the_line_that_gives_up(store: FileStore, sleeps: list[float]) -> None:
    c = client(store, [httpx.Response(503), httpx.Response(503)], retries=1)
    with pytest.raises(TargetError) as err:
        c.referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: HTTP 503 (2 attempts)"
    assert len(c.seen) == 2  # type: ignore[attr-defined]


def test_the_backoff_doubles_up_to_its_cap_and_each_wait_is_logged(
    store: FileStore, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [httpx.Response(503, text="busy")] * 4 + [httpx.Response(200, json=REFS_OK)]
    c = client(store, answers, retries=4, backoff_initial=0.01234, backoff_max=0.03)
    logs = record_log(monkeypatch, werkmap)
    assert c.referenties("1")["verzoeknummer"] == "1"
    assert sleeps == [0.01234, 0.02468, 0.03, 0.03]
    retried = [e for e in logs if e["event"] == "werkmap call failed, retrying"]
    assert [(e["call"], e["attempt"], e["of"], e["reason"], e["wait_s"]) for e in retried] == [
        (f"GET {REFERENTIES}", n, 5, "HTTP 503: busy", wait)
        for n, wait in zip(range(1, 5), [0.012, 0.025, 0.03, 0.03], strict=True)  # the log rounds to ms
    ]


def test_the_logged_reason_of_a_retry_is_cut_to_300_characters(
    store: FileStore, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = client(store, [httpx.Response(503, text="x" * 400), httpx.Response(200, json=REFS_OK)])
    logs = record_log(monkeypatch, werkmap)
    c.referenties("1")
    (retried,) = [e for e in logs if e["event"] == "werkmap call failed, retrying"]
    assert retried["reason"] == "HTTP 503: " + "x" * 290


def test_a_retry_after_longer_than_the_backoff_is_waited_for_up_to_the_cap(
    store: FileStore, sleeps: list[float]
) -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(503, headers={"Retry-After": "60"}),
        httpx.Response(200, json=REFS_OK),
    ]
    c = client(store, answers, retries=2, backoff_initial=0.01, backoff_max=10)
    c.referenties("1")
    assert sleeps == [2.0, 10]


def test_a_reported_failure_is_cut_to_600_characters(store: FileStore, sleeps: list[float]) -> None:
    long = "9" * 700
    c = client(store, [httpx.Response(503)] * 2, retries=1)
    with pytest.raises(TargetError) as err:
        c.referenties(long)
    assert len(str(err.value)) == 600 and str(err.value).startswith(f"GET {BASE}/verzoeken/999")
    c = client(store, [httpx.Response(404)])
    with pytest.raises(TargetRefused) as refused:
        c.referenties(long)
    assert len(str(refused.value)) == 600 and refused.value.status == 404


# -- _check_status: which statuses are retried ---------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_or_429_is_retried(status: int, store: FileStore, sleeps: list[float]) -> None:
    c = client(store, [httpx.Response(status), httpx.Response(200, json=REFS_OK)])
    assert c.referenties("1")["verzoeknummer"] == "1"
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [300, 301, 304, 400, 404, 499])
def test_a_redirect_or_another_4xx_is_refused_at_once(status: int, store: FileStore, sleeps: list[float]) -> None:
    c = client(store, [httpx.Response(status)])
    with pytest.raises(TargetRefused) as err:
        c.referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: HTTP {status}"  # no body: no ": " after the status
    assert (err.value.status, sleeps) == (status, [])


def test_a_status_below_300_is_success(store: FileStore) -> None:
    c = client(store, [httpx.Response(299, json=REFS_OK)])
    assert c.referenties("1")["verzoeknummer"] == "1"


# -- URLs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [BASE, BASE + "/", BASE + "//"])
def test_a_base_url_with_a_trailing_slash_makes_the_same_urls(base: str, store: FileStore) -> None:
    c = client(store, [], base=base)
    assert c.url("verzoeken/1/verzoekreferenties") == REFERENTIES
    assert c.url("/verzoeken/1/verzoekreferenties") == REFERENTIES
    assert c.url("/api/verzoeken/1/verzoekreferenties") == REFERENTIES


# -- TLS set-up -------------------------------------------------------------------------------------------------


def test_a_missing_client_certificate_names_the_error(tmp_path: Path, store: FileStore) -> None:
    opts = WerkmapOptions(base_url="https://127.0.0.1:9", oin=OIN, client_cert=str(tmp_path / "nope.crt"))
    with WerkmapClient(opts, store) as c, pytest.raises(TargetError) as err:
        c.referenties("1")
    assert str(err.value).startswith("TLS setup for https://127.0.0.1:9: FileNotFoundError: ")


# -- referenties: the line that refuses names the call and the document ----------------------------------------


def test_a_malformed_document_is_refused_naming_the_call_and_its_document_id(store: FileStore) -> None:
    bad = {"verzoeknummer": "1", "documenten": [{"documentId": "d-7", "href": "/d", "sha256": "x", "grootte": 1}]}
    with pytest.raises(TargetRefused) as err:
        client(store, [httpx.Response(200, json=bad)]).referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: document d-7: malformed sha256 or grootte"


# -- download ---------------------------------------------------------------------------------------------------

DATA = b"bouwtekening " * 1000
SHA = hashlib.sha256(DATA).hexdigest()
DOC = {"documentId": "d-1", "href": "/documenten/1", "sha256": SHA, "grootte": len(DATA)}
DOCUMENT = f"{BASE}/documenten/1"


def test_a_stored_file_whose_size_differs_from_the_referenties_is_fetched_not_taken(store: FileStore) -> None:
    """The werkmap's grootte disagrees with the content its sha256 names: the stored file is not handed out
    unseen; the download ends short of that grootte and fails (an operator sees it)."""
    with store.writer(SHA, len(DATA)) as w:
        w.write(DATA)
        w.commit()
    c = client(store, [httpx.Response(200, content=DATA)], retries=0)
    with pytest.raises(TargetError, match=f"connection closed after {len(DATA)} of {len(DATA) + 1} bytes"):
        c.download(DOC | {"grootte": len(DATA) + 1})
    assert len(c.seen) == 1  # type: ignore[attr-defined]
    assert c.download(DOC).read_bytes() == DATA  # the stored file, no second request
    assert len(c.seen) == 1  # type: ignore[attr-defined]


def test_a_corrupt_document_is_logged_with_the_call_and_the_reason(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = client(store, [httpx.Response(200, content=DATA[:-1] + b"X"), httpx.Response(200, content=DATA)])
    logs = record_log(monkeypatch, werkmap)
    assert c.download(DOC).read_bytes() == DATA
    (corrupt,) = [e for e in logs if e["event"] == "werkmap document corrupt, fetching again"]
    assert corrupt["call"] == f"GET {DOCUMENT}"
    assert corrupt["reason"].startswith("sha256 ") and "\n" not in corrupt["reason"]


def test_a_download_that_keeps_failing_names_the_call(store: FileStore, sleeps: list[float]) -> None:
    assert_failures_name_the_call(store, DOCUMENT, lambda c: c.download(DOC))


def test_a_document_another_writer_is_storing_is_a_transient_error_naming_the_call(store: FileStore) -> None:
    c = client(store, [httpx.Response(200, content=DATA)])
    with store.writer(SHA, len(DATA)) as busy:
        busy.write(DATA[:10])
        with pytest.raises(TargetError) as err:
            c.download(DOC)
    assert str(err.value).startswith(f"GET {DOCUMENT}: ") and err.value.transient
    assert not isinstance(err.value, TargetRefused)


def test_a_document_that_cannot_be_stored_names_the_call_and_the_os_error(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "writer", disk_full)
    with pytest.raises(TargetError) as err:
        client(store, []).download(DOC)
    assert str(err.value) == f"GET {DOCUMENT}: storing failed: OSError: [Errno 28] No space left on device"


# -- verzoek_xml, verzoek_pdf ---------------------------------------------------------------------------------

VERZOEK = f'<vz:verzoek xmlns:vz="{stam.VERZOEK}"><vz:verzoeknummer>1</vz:verzoeknummer></vz:verzoek>'.encode()


@pytest.mark.parametrize(
    ("referenties", "url"),
    [
        (
            {"verzoeknummer": "1", "verzoek": {"href": "/verzoeken/1/versies/2/samenvatting"}},
            "/verzoeken/1/versies/2/samenvatting",
        ),
        ({"verzoeknummer": "1", "verzoek": {"href": ""}}, "/verzoeken/1/samenvatting"),
        ({"verzoeknummer": "1", "verzoek": {}}, "/verzoeken/1/samenvatting"),
        ({"verzoeknummer": "1"}, "/verzoeken/1/samenvatting"),
    ],
)
def test_the_stam_verzoek_is_fetched_from_its_href_else_from_the_samenvatting_path(
    referenties: Any, url: str, store: FileStore
) -> None:
    c = client(store, [httpx.Response(200, content=VERZOEK)])
    assert c.verzoek_xml(referenties) == VERZOEK
    (request,) = c.seen  # type: ignore[attr-defined]
    assert str(request.url) == BASE + url
    assert request.headers["Accept"] == "application/xml"


def test_a_stam_verzoek_that_fails_names_the_call(store: FileStore, sleeps: list[float]) -> None:
    refs = {"verzoeknummer": "1"}
    url = f"{BASE}/verzoeken/1/samenvatting"
    assert_failures_name_the_call(store, url, lambda c: c.verzoek_xml(refs))
    with pytest.raises(TargetRefused) as foreign:
        client(store, [httpx.Response(200, content=b"<zaak/>")]).verzoek_xml(refs)
    assert str(foreign.value) == f"GET {url}: expected a STAM verzoek, got <zaak>"


PDF = {"verzoeknummer": "1", "pdf": {"href": "/verzoeken/1/pdf"}}
PDF_URL = f"{BASE}/verzoeken/1/pdf"


def test_a_verzoek_pdf_that_fails_names_the_call(
    store: FileStore, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_failures_name_the_call(store, PDF_URL, lambda c: c.verzoek_pdf(PDF))
    monkeypatch.setattr(store, "writer", disk_full)
    with pytest.raises(TargetError) as stored:
        client(store, [httpx.Response(200, content=b"%PDF-1.7")]).verzoek_pdf(PDF)
    assert str(stored.value) == f"GET {PDF_URL}: storing failed: OSError: [Errno 28] No space left on device"


def test_a_zoek_answer_that_cannot_be_read_names_the_call_and_its_page(store: FileStore) -> None:
    page_1 = {"verzoeken": [{"verzoeknummer": "1"}], "aantalPaginas": 2}
    c = client(store, [httpx.Response(200, json=page_1), httpx.Response(200, json={"verzoeken": "none"})])
    with pytest.raises(TargetRefused) as err:
        list(c.zoek(datetime(2026, 1, 1), datetime(2026, 1, 2)))
    assert str(err.value) == f"POST {BASE}/verzoeken/_zoek (pagina 2): answer has no verzoeken list"


# -- the error text of an answer ---------------------------------------------------------------------------------


def test_the_body_of_a_refusal_is_cut_to_300_characters(store: FileStore) -> None:
    with pytest.raises(TargetRefused) as err:
        client(store, [httpx.Response(404, text="x" * 400)]).referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: HTTP 404: " + "x" * 300


def test_a_streamed_problem_in_chunks_is_read_whole_up_to_4096_bytes(store: FileStore) -> None:
    chunks = [b'{"title": "Niet gevonden", ', b'"detail": "document 1 bestaat niet"}']
    with pytest.raises(TargetRefused) as err:
        client(store, [httpx.Response(404, content=iter(chunks))]).verzoek_pdf(PDF)
    assert str(err.value) == f"GET {PDF_URL}: HTTP 404: Niet gevonden: document 1 bestaat niet"


def test_a_streamed_error_body_is_read_no_further_than_4096_bytes(store: FileStore) -> None:
    """A 5xx with an endless body must not be read whole: the first 4096 bytes say enough."""
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            sent.append(4096)
            yield b"fout " * 819 + b"x"  # 4096 bytes

    with pytest.raises(TargetRefused) as err:
        client(store, [httpx.Response(404, content=endless())]).verzoek_pdf(PDF)
    assert sent == [4096]
    assert str(err.value).startswith(f"GET {PDF_URL}: HTTP 404: fout fout ")


# -- the file name of the verzoek's PDF ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        ('attachment; filename="aanvraag.pdf"', "aanvraag.pdf"),
        ("inline; filename=Bouwtekening_X-1.pdf", "Bouwtekening_X-1.pdf"),
        ("attachment; filename=" + "a" * 251 + ".pdf", "a" * 251 + ".pdf"),  # 255 characters
        ("attachment; filename=" + "a" * 252 + ".pdf", None),
        ("attachment", None),
        ('attachment; filename=""', None),
        ('attachment; filename="../x.pdf"', None),
    ],
)
def test_the_pdfs_file_name_is_taken_when_it_is_a_plain_name(
    disposition: str, name: str | None, store: FileStore
) -> None:
    answer = httpx.Response(200, content=b"%PDF-1.7", headers={"Content-Disposition": disposition})
    stored = client(store, [answer]).verzoek_pdf(PDF)
    assert stored is not None and stored.bestandsnaam == name


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        ({"title": "Niet gevonden"}, "Niet gevonden"),
        ({"detail": "document 1 bestaat niet"}, "document 1 bestaat niet"),
        ({"title": "Niet gevonden", "detail": "document 1"}, "Niet gevonden: document 1"),
        ({"status": 404}, '{"status":404}'),
    ],
)
def test_a_problem_answer_is_reported_by_its_title_and_detail(problem: Any, text: str, store: FileStore) -> None:
    with pytest.raises(TargetRefused) as err:
        client(store, [httpx.Response(404, json=problem)]).referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: HTTP 404: {text}"


def test_an_error_body_that_is_not_utf8_is_still_reported(store: FileStore) -> None:
    with pytest.raises(TargetRefused) as err:
        client(store, [httpx.Response(404, content=b"\xfffout")]).referenties("1")
    assert str(err.value) == f"GET {REFERENTIES}: HTTP 404: \ufffdfout"


def test_a_zoek_page_count_that_is_no_number_is_refused_showing_its_start(store: FileStore) -> None:
    answer = {"verzoeken": [], "aantalPaginas": "twee" * 20}
    with pytest.raises(TargetRefused) as err:
        list(client(store, [httpx.Response(200, json=answer)]).zoek(datetime(2026, 1, 1), datetime(2026, 1, 2)))
    shown = ("twee" * 10)[:40]
    assert str(err.value) == f"POST {BASE}/verzoeken/_zoek (pagina 1): aantalPaginas is not a number: {shown!r}"


def test_an_overdracht_names_the_allowed_rollen_and_a_refusal_names_its_call(store: FileStore) -> None:
    c = client(store, [httpx.Response(400)])
    with pytest.raises(ValueError) as wrong:
        c.overdragen("1", OIN, "eigenaar", "")  # type: ignore[arg-type]
    assert str(wrong.value) == "rol must be one of bevoegdGezag, behandeldienst, not 'eigenaar'"
    assert c.seen == []  # type: ignore[attr-defined]
    with pytest.raises(TargetRefused) as refused:
        c.overdragen("1", OIN, stam.ROLLEN[0], "naar de omgevingsdienst")
    assert str(refused.value) == f"POST {BASE}/verzoeken/1/_overdragen: HTTP 400"


def test_zoek_asks_each_page_of_the_window_and_reads_a_page_count_given_as_text(store: FileStore) -> None:
    pages = [
        httpx.Response(200, json={"verzoeken": [{"verzoeknummer": "1"}], "aantalPaginas": "2"}),
        httpx.Response(200, json={"verzoeken": [{"verzoeknummer": "2"}], "aantalPaginas": "2"}),
    ]
    c = client(store, pages)
    vanaf, tot = datetime(2026, 1, 1, 8), datetime(2026, 1, 1, 9)
    assert [h["verzoeknummer"] for h in c.zoek(vanaf, tot, paginagrootte=1)] == ["1", "2"]
    bodies = [json.loads(r.content) for r in c.seen]  # type: ignore[attr-defined]
    assert bodies == [
        {"vanaf": "2026-01-01T08:00:00", "tot": "2026-01-01T09:00:00", "pagina": n, "paginagrootte": 1} for n in (1, 2)
    ]
    with pytest.raises(TargetRefused) as err:
        list(client(store, [httpx.Response(400)]).zoek(vanaf, tot))
    assert str(err.value) == f"POST {BASE}/verzoeken/_zoek: HTTP 400"
