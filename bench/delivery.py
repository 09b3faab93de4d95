"""Benchmark (not a test): deliveries per second into the fake ZGW zaaksysteem, and a large backlog
drained with flat memory.

    .venv/bin/python bench/delivery.py [--messages 300] [--backlog 10000] [--workers 4] [--validate]

The fake ZGW runs in its own process (``python -m adapter.simulation.fake_zgw``; OpenAPI checks off
unless ``--validate``, as they cost more than everything else). Baseline, measured in the same run: the
same calls a delivery of the example aanvraag makes (zaak, 2 rollen, 2 zaakobjecten, 2 documenten,
2 zaakinformatieobjecten, status), sent directly with httpx by as many threads as the outbox has
workers, with no store, mapping or checkpoints. Then the adapter: messages accepted through the real
inbound channel into a fresh SQLite store, delivered by the outbox. Then the backlog: that many messages
stored first, then drained, sampling this process's RSS every half second.
"""

from __future__ import annotations

import argparse
import base64
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapter.config import load_settings  # noqa: E402
from adapter.inbound.stuf_lvo import StufLvoChannel  # noqa: E402
from adapter.logs import configure_logging  # noqa: E402
from adapter.services import open_services  # noqa: E402
from adapter.store.db import upgrade  # noqa: E402
from adapter.targets.zgw.client import _token  # noqa: E402
from adapter.targets.zgw.options import ApiAuth  # noqa: E402

SPECS = ROOT.parent / "shared" / "reference" / "zgw"
SECRET = "a-benchmark-secret-of-at-least-32-bytes"
TEMPLATE = (ROOT / "fixtures" / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml").read_bytes()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(n: int) -> bytes:
    body = re.sub(
        rb"<StUF:referentienummer>[^<]*</StUF:referentienummer>",
        f"<StUF:referentienummer>B-{uuid.uuid4().hex[:24]}</StUF:referentienummer>".encode(),
        TEMPLATE,
        count=1,
    )
    return body.replace(b">1234567<", f">{10_000_000 + n}<".encode())


def start_fake(validate: bool) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    args = [sys.executable, "-m", "adapter.simulation.fake_zgw", "--specs", str(SPECS), "--port", str(port)]
    args += ["--secret", SECRET] + ([] if validate else ["--no-validate"])
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    catalogus = proc.stdout.readline().decode().split()[-1]
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base}/catalogi/api/v1/catalogussen", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, base, catalogus


def baseline(base: str, catalogus: str, n: int, threads: int) -> float:
    """zaken/s for the bare call sequence (URLs resolved once, as the adapter's cache does)."""
    h = {"Authorization": f"Bearer {_token(ApiAuth(client_id='loket-adapter', secret=SECRET))}"}
    hz = {**h, "Accept-Crs": "EPSG:4326", "Content-Crs": "EPSG:4326"}
    with httpx.Client() as c:
        zt = c.get(
            f"{base}/catalogi/api/v1/zaaktypen",
            params={"catalogus": catalogus, "identificatie": "ZT-OMV-REG"},
            headers=h,
        ).json()["results"][0]["url"]
        rts = {
            r["omschrijvingGeneriek"]: r["url"]
            for r in c.get(f"{base}/catalogi/api/v1/roltypen", params={"zaaktype": zt}, headers=h).json()["results"]
        }
        st = c.get(f"{base}/catalogi/api/v1/statustypen", params={"zaaktype": zt}, headers=h).json()["results"][0][
            "url"
        ]
        iot = c.get(f"{base}/catalogi/api/v1/informatieobjecttypen", params={"catalogus": catalogus}, headers=h).json()[
            "results"
        ][0]["url"]
    pdf = base64.b64encode(b"%PDF-1.4 benchmark").decode()
    counter = iter(range(n))
    lock = threading.Lock()

    def one(c: httpx.Client, i: int) -> None:
        z = f"{base}/zaken/api/v1"
        zaak = c.post(
            f"{z}/zaken",
            headers=hz,
            json={
                "bronorganisatie": "002564440",
                "zaaktype": zt,
                "verantwoordelijkeOrganisatie": "002564440",
                "startdatum": date.today().isoformat(),
                "identificatie": f"BASE-{i}-{uuid.uuid4().hex[:6]}",
            },
        ).json()["url"]
        for rt, ident in (
            (rts["initiator"], {"inpBsn": "999993653", "geslachtsnaam": "Berg"}),
            (rts["belanghebbende"], {"inpBsn": "999993653"}),
        ):
            c.post(
                f"{z}/rollen",
                headers=hz,
                json={
                    "zaak": zaak,
                    "betrokkeneType": "natuurlijk_persoon",
                    "roltype": rt,
                    "roltoelichting": "x",
                    "betrokkeneIdentificatie": ident,
                },
            )
        c.post(
            f"{z}/zaakobjecten",
            headers=hz,
            json={
                "zaak": zaak,
                "objectType": "adres",
                "objectIdentificatie": {
                    "identificatie": "1",
                    "wplWoonplaatsNaam": "W",
                    "gorOpenbareRuimteNaam": "S",
                    "huisnummer": 1,
                },
            },
        )
        c.post(
            f"{z}/zaakobjecten",
            headers=hz,
            json={
                "zaak": zaak,
                "objectType": "kadastrale_onroerende_zaak",
                "objectIdentificatie": {"kadastraleIdentificatie": "A1", "kadastraleAanduiding": "A 1"},
            },
        )
        for k in range(2):
            eio = c.post(
                f"{base}/documenten/api/v1/enkelvoudiginformatieobjecten",
                headers=h,
                json={
                    "bronorganisatie": "002564440",
                    "creatiedatum": date.today().isoformat(),
                    "titel": "t",
                    "auteur": "a",
                    "taal": "nld",
                    "informatieobjecttype": iot,
                    "inhoud": pdf,
                    "bestandsomvang": 18,
                    "identificatie": f"BASE-{i}-{k}-{uuid.uuid4().hex[:6]}",
                },
            ).json()["url"]
            c.post(f"{z}/zaakinformatieobjecten", headers=hz, json={"zaak": zaak, "informatieobject": eio})
        c.post(
            f"{z}/statussen",
            headers=hz,
            json={"zaak": zaak, "statustype": st, "datumStatusGezet": "2026-01-01T00:00:00Z"},
        )

    def worker() -> None:
        with httpx.Client(timeout=30) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                one(c, i)

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.monotonic() - t0)


def adapter_services(tmp: Path, base: str, catalogus: str, workers: int):  # type: ignore[no-untyped-def]
    mappings = tmp / "mappings"
    mappings.mkdir()
    (mappings / "m.toml").write_text((ROOT / "mappings" / "voorbeeldstad.toml").read_text())
    cfg = tmp / "config.toml"
    cfg.write_text(f"""
[server]
environment = "production"
log_level = "WARNING"
[store]
url = "sqlite:///{tmp / "adapter.db"}"
[delivery]
workers = {workers}
poll_interval = 0.05
mappings_dir = "{mappings}"
[[stuf.ontvangers]]
organisatie = "00000001002564440000"
applicatie = "ZAAKSYSTEEM"
[targets.zaaksysteem]
kind = "zgw"
zaken_url = "{base}/zaken/api/v1"
documenten_url = "{base}/documenten/api/v1"
catalogi_url = "{base}/catalogi/api/v1"
catalogus = "{catalogus}"
auth = {{ client_id = "loket-adapter", secret = "{SECRET}" }}
""")
    settings = load_settings(cfg)
    configure_logging("production", "WARNING")
    sv = open_services(settings)
    upgrade(sv.engine)
    return sv


def accept_all(sv, first: int, n: int) -> None:  # type: ignore[no-untyped-def]
    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    for i in range(first, first + n):
        channel.accept(channel.receive(message(i), uuid.uuid4().hex))


def open_deliveries(sv) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with sv.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM deliveries WHERE state NOT IN ('done','dead')")).scalar_one()


def drain(sv, sample: list[float]) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    sv.outbox.start()
    while open_deliveries(sv):
        sample.append(rss_mb())
        time.sleep(0.5)
    sample.append(rss_mb())
    elapsed = time.monotonic() - t0
    sv.outbox.stop()
    sv.outbox._stop.clear()
    sv.outbox._threads.clear()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--backlog", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--validate", action="store_true", help="keep the fake's OpenAPI checks on")
    args = ap.parse_args()
    if not SPECS.is_dir():
        raise SystemExit(f"needs the official ZGW OpenAPI files in {SPECS}")
    proc, base, catalogus = start_fake(args.validate)
    try:
        print(f"delivery: {args.workers} workers, fake ZGW {'with' if args.validate else 'without'} OpenAPI checks")
        base_rate = baseline(base, catalogus, args.messages, args.workers)
        print(f"direct calls (baseline)   {base_rate:7.1f} zaken/s   ({args.messages} zaken, 11 calls each)")
        tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
        sv = adapter_services(tmp, base, catalogus, args.workers)
        accept_all(sv, 0, args.messages)
        elapsed = drain(sv, [])
        rate = args.messages / elapsed
        print(f"loket-adapter outbox      {rate:7.1f} deliveries/s   ratio adapter/direct: {rate / base_rate:.2f}x")
        if args.backlog:
            t0 = time.monotonic()
            accept_all(sv, args.messages, args.backlog)
            print(f"backlog: {args.backlog} messages stored in {time.monotonic() - t0:.1f} s")
            samples: list[float] = []
            elapsed = drain(sv, samples)
            q = len(samples) // 4 or 1
            print(
                f"backlog drained in {elapsed:.0f} s ({args.backlog / elapsed:.1f} deliveries/s); RSS MB at start "
                f"{samples[0]:.0f}, after 1/4 {samples[q]:.0f}, peak {max(samples):.0f}, end {samples[-1]:.0f}"
            )
        sv.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
