"""Benchmark (not a test): deliveries per second into the real Open Zaak 1.21.0, next to the fake ZGW
measured in the same run.

    .venv/bin/python bench/openzaak.py [--messages 60] [--workers 4]

Open Zaak is installed (cached) and started by ``tests/integration/openzaak_server.py`` (uwsgi, 2 processes
× 2 threads, its own PostgreSQL on loopback) with the test catalogus (``tests/integration/seed.py``). The
baseline is the fake ZGW in its own process (``python -m adapter.simulation.fake_zgw --no-validate``, as
``bench/delivery.py`` runs it). For each: the example aanvraag (zaak, 2 rollen, 2 zaakobjecten,
2 documenten, 2 zaakinformatieobjecten, status) under ``--messages`` distinct aanvraagnummers, accepted
through the real inbound channel into a fresh SQLite store, then delivered by the outbox with ``--workers``
worker threads; the rate counts from the start of the outbox until the last delivery is done.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from delivery import SECRET as FAKE_SECRET  # noqa: E402
from delivery import start_fake  # noqa: E402

from adapter.config import load_settings  # noqa: E402
from adapter.inbound.stuf_lvo import StufLvoChannel  # noqa: E402
from adapter.logs import configure_logging  # noqa: E402
from adapter.services import Services, open_services  # noqa: E402
from adapter.store.db import upgrade  # noqa: E402
from tests.integration import openzaak_server  # noqa: E402

TEMPLATE = (ROOT / "fixtures" / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml").read_bytes()


def message(nummer: int) -> bytes:
    """The example aanvraag under another aanvraagnummer (and so other bijlage ids and zaak identificatie:
    Open Zaak keeps identificaties unique) and a fresh referentienummer."""
    body = re.sub(rb"(?<!\d)1234567(?!\d)", str(nummer).encode(), TEMPLATE)
    return re.sub(
        rb"<StUF:referentienummer>[^<]*</StUF:referentienummer>",
        f"<StUF:referentienummer>B-{uuid.uuid4().hex[:24]}</StUF:referentienummer>".encode(),
        body,
        count=1,
    )


def services(tmp: Path, base: str, catalogus: str, client_id: str, secret: str, workers: int) -> Services:
    mappings = tmp / "mappings"
    mappings.mkdir(parents=True)
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
backoff_initial = 0.2
backoff_max = 1
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
auth = {{ client_id = "{client_id}", secret = "{secret}" }}
timeout = 60
""")
    configure_logging("production", "WARNING")
    sv = open_services(load_settings(cfg))
    upgrade(sv.engine)
    return sv


def run(sv: Services, first: int, n: int) -> tuple[float, dict[str, int]]:
    """Accept n messages, then deliver them: deliveries per second, and the final states."""
    from sqlalchemy import text

    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    for i in range(first, first + n):
        channel.accept(channel.receive(message(i), uuid.uuid4().hex))
    assert sv.outbox is not None
    t0 = time.monotonic()
    sv.outbox.start()

    def open_() -> int:
        with sv.engine.connect() as conn:
            q = "SELECT count(*) FROM deliveries WHERE state NOT IN ('done','dead','needs-attention')"
            return int(conn.execute(text(q)).scalar_one())

    while open_():
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    sv.outbox.stop()
    sv.outbox._stop.clear()  # so that it can start again (as bench/delivery.py does)
    sv.outbox._threads.clear()
    with sv.engine.connect() as conn:
        states: dict[Any, Any] = dict(conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state")).all())
    return n / elapsed, {str(k): int(v) for k, v in states.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=60)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    if reason := openzaak_server.skip_reason():
        raise SystemExit(f"cannot run Open Zaak here: {reason}")
    from tests.integration.seed import seed

    t0 = time.monotonic()
    root = openzaak_server.install()
    cold = (root / "install-times.json").read_text()
    print(f"Open Zaak 1.21.0: install {time.monotonic() - t0:.1f} s (cold install: {cold})")
    oz = openzaak_server.OpenZaak(root, Path(tempfile.mkdtemp(prefix="loket-openzaak-bench.")))
    proc = None
    results: dict[str, Any] = {}
    try:
        oz.start()
        print(f"Open Zaak started in {oz.timings['start_s']:.1f} s (migrated template copied, uwsgi 2×2)")
        catalogus = seed(oz)["catalogus"]
        proc, fake_base, fake_catalogus = start_fake(validate=False)
        print(f"delivery of the example aanvraag (11 calls), {args.workers} workers, {args.messages} messages each")
        for name, base, cat, cid, secret in (
            ("fake ZGW (baseline)", fake_base, fake_catalogus, "loket-adapter", FAKE_SECRET),
            ("Open Zaak 1.21.0", oz.url, catalogus, openzaak_server.CLIENT_ID, openzaak_server.SECRET),
        ):
            sv = services(Path(tempfile.mkdtemp(prefix="bench-openzaak-")), base, cat, cid, secret, args.workers)
            try:
                run(sv, 9_000_000, 2)  # warm-up: catalogus cache, connections
                rate, states = run(sv, 9_100_000, args.messages)
            finally:
                sv.close()
            results[name] = rate
            print(f"{name:<22}{rate:7.1f} deliveries/s   states {states}")
        fake_rate, oz_rate = results["fake ZGW (baseline)"], results["Open Zaak 1.21.0"]
        per = 1000 / oz_rate * args.workers
        print(f"ratio Open Zaak/fake: {oz_rate / fake_rate:.2f}x ({per:.0f} ms per delivery and worker on Open Zaak)")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        oz.stop()
        shutil.rmtree(oz.work, ignore_errors=True)


if __name__ == "__main__":
    main()
