"""Proofs of the delivery guarantees under crashes and outages (issue 8, item 8), shared by the suite
(``tests/test_proofs.py``, time-compressed) and the full-length runs (this module as a script):

    .venv/bin/python -m tests.proofs kill [--messages 2000] [--kills 3] [--seed S]
    .venv/bin/python -m tests.proofs zaaksysteem-down [--messages 200] [--outage 300]
    .venv/bin/python -m tests.proofs two-serves [--messages 2000]
    .venv/bin/python -m tests.proofs postgres-outage [--messages 600] [--outages 2] [--outage 30]

Everything is real: ``loket-adapter serve`` subprocesses spoken to over HTTP, the fake ZGW zaaksysteem
(validating every call against the official OpenAPI files) on a real port, and for the PostgreSQL proofs a
PostgreSQL 15 cluster started here on a free port (``runuser -u postgres``: needs root). The loket's side
posts every message until it gets a Bv03, with the same body each time, as the loket does.

Each proof ends in ``check_exactly_once``: one zaak per aanvraag, one complete document per bijlage, one
zaakinformatieobject per document, one status per zaak, every delivery ``done`` at its first outcome
(nothing ``dead`` or ``needs-attention``, no resend).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine, create_engine, text

from adapter.delivery.worker import STORE_DOWN
from tests.conftest import Server, free_port, make_server, write_config
from tests.delivery_env import SECRET, ZGW_SPECS, Zaaksysteem, copy_mappings, delivery_toml, wait_for
from tests.soap import STUF, Answer, fixture, with_reference

BV03 = f"{{{STUF}}}Bv03Bericht"
TEMPLATE = fixture("omvDi01AanbiedenAanvraag")
BIJLAGEN = TEMPLATE.count(b"<LVO:bijlageId>")


def aanvraag(n: int, run: str = "") -> bytes:
    """The example aanvraag as message ``n``: its own referentienummer, aanvraagnummer and bijlage ids."""
    body = with_reference(TEMPLATE, f"PR{run}-{n}")
    return re.sub(rb">1234567([<_-])", lambda m: f">{nummer(n)}".encode() + m.group(1), body)


def nummer(n: int) -> int:
    return 10_000_000 + n


# -- the zaaksysteem ---------------------------------------------------------------------------------------


class FakeZaaksysteem:
    """The fake ZGW on a fixed port that can go down (connections refused) and come back with what it held."""

    def __init__(self, validate: bool = True) -> None:
        from adapter.simulation.fake_zgw import FakeZgw

        self.fake = FakeZgw(ZGW_SPECS, client_id="loket-adapter", secret=SECRET, validate=validate)
        self.port = free_port()
        self.base_url = self.fake.base_url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def zs(self) -> Zaaksysteem:
        return Zaaksysteem(self.fake, self.base_url, self.stop)

    def start(self) -> None:
        config = uvicorn.Config(
            self.fake.app,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-zgw", daemon=True)
        self._thread.start()
        wait_for(lambda: self._server is not None and self._server.started, 10, "the fake ZGW to listen")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = None


# -- the loket ----------------------------------------------------------------------------------------------


@dataclass
class Loket:
    """Clients posting messages as the loket does: each until it is answered with a Bv03, same body every
    time. Message ``i`` goes to ``urls[i % len(urls)]``; with ``cross_every`` every such message, once
    acknowledged, is also posted to the next URL (an identical resend arriving at the other process)."""

    urls: list[str]
    bodies: list[bytes]
    clients: int = 8
    pause: float = 0.1  # before a resend
    interval: float = 0.0  # each client's pause between messages (a steady load rather than a burst)
    cross_every: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    acked: set[int] = field(default_factory=set)
    stuf046_at: list[float] = field(default_factory=list)
    bv03_at: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Loket:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            raise AssertionError(f"the loket did not get all Bv03s in {timeout:g} s: {self.summary()}")

    def summary(self) -> str:
        return f"{len(self.acked)}/{len(self.bodies)} acknowledged; answers {dict(self.answers)}"

    def _client(self) -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with self._lock:
                    i = self._next
                    self._next += 1
                if i >= len(self.bodies):
                    return
                self._until_bv03(http, self.urls[i % len(self.urls)], i)
                with self._lock:
                    self.acked.add(i)
                if self.cross_every and i % self.cross_every == 0 and len(self.urls) > 1:
                    self._until_bv03(http, self.urls[(i + 1) % len(self.urls)], i)
                time.sleep(self.interval)

    def _until_bv03(self, http: httpx.Client, url: str, i: int) -> None:
        while True:
            kind = self._post(http, url, self.bodies[i])
            with self._lock:
                self.answers[kind] += 1
                (self.bv03_at if kind == "Bv03" else self.stuf046_at if kind == "StUF046" else []).append(
                    time.monotonic()
                )
            if kind == "Bv03":
                return
            time.sleep(self.pause)

    def _post(self, http: httpx.Client, url: str, body: bytes) -> str:
        try:
            r = http.post(url, content=body, headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__})"
        if r.status_code != 200 and r.status_code != 500:
            return f"HTTP {r.status_code}"
        try:
            answer = Answer(r.status_code, r.content)
            if answer.payload.tag == BV03:
                return "Bv03"
            code = answer.code or "?"
        except Exception:
            return "unreadable answer"
        if code != "StUF046":  # anything but "store unavailable, try again" is a defect here
            with self._lock:
                self.problems.append(f"Fo03 {code}: {r.text[:300]}")
        return code


# -- checks -------------------------------------------------------------------------------------------------


def delivery_states(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state")).all())  # type: ignore[arg-type]


def wait_delivered(engine: Engine, n: int, timeout: float) -> None:
    def done() -> bool:
        states = delivery_states(engine)
        if set(states) & {"dead", "needs-attention"}:
            raise AssertionError(f"deliveries gave up: {states}")
        return states.get("done", 0) >= n

    try:
        wait_for(done, timeout, f"{n} deliveries done")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; states {delivery_states(engine)}") from None


def check_exactly_once(fake: Any, engine: Engine, count: int) -> dict[str, Any]:
    """Every aanvraag 0..count-1 is one zaak with one complete document per bijlage, linked once, with one
    status; every message stored once; every delivery done, none dead or needing attention. Returns figures."""
    with engine.connect() as conn:
        n_msgs, n_refs = conn.execute(text("SELECT count(*), count(DISTINCT referentienummer) FROM messages")).one()
        attempts = conn.execute(text("SELECT max(attempts), sum(attempts) FROM deliveries")).one()
    assert n_msgs == n_refs == count, f"{n_msgs} messages stored, {n_refs} distinct, {count} sent"
    states = delivery_states(engine)
    assert states == {"done": count}, states
    expected = {f"OLO-{nummer(n)}" for n in range(count)}
    zaken = Counter(z["identificatie"] for z in fake.zaken)
    assert set(zaken) == expected, (
        f"missing {sorted(expected - set(zaken))[:5]}, extra {sorted(set(zaken) - expected)[:5]}"
    )
    assert not [k for k, v in zaken.items() if v > 1], f"duplicate zaken: {[k for k, v in zaken.items() if v > 1][:5]}"
    docs = fake.documenten
    idents = Counter(d["identificatie"] for d in docs)
    assert not [k for k, v in idents.items() if v > 1], (
        f"duplicate documents: {[k for k, v in idents.items() if v > 1][:5]}"
    )
    assert len(docs) == count * BIJLAGEN, f"{len(docs)} documents for {count} aanvragen of {BIJLAGEN} bijlagen"
    incomplete = [d["identificatie"] for d in docs if d["locked"] or (d["bytes"] is None and d["bestandsomvang"])]
    assert not incomplete, f"documents incomplete or locked: {incomplete[:5]}"
    links = Counter((z["zaak"], z["informatieobject"]) for z in fake.zaakinformatieobjecten)
    assert len(links) == len(docs) and max(links.values()) == 1, "a document not linked once"
    statussen = Counter(s["zaak"] for s in fake.statussen)
    assert len(statussen) == count and max(statussen.values()) == 1, "not one status per zaak"
    rollen = Counter(
        (r["zaak"], r["roltype"], json.dumps(r.get("betrokkeneIdentificatie"), sort_keys=True)) for r in fake.rollen
    )
    assert max(rollen.values()) == 1, "a rol twice"
    return {
        "zaken": len(zaken),
        "documents": len(docs),
        "messages": n_msgs,
        "max_attempts": attempts[0],
        "attempts": attempts[1],
    }


def log_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"event": line, "level": "raw"})
    return out


# -- PostgreSQL -----------------------------------------------------------------------------------------------


@contextmanager
def postgres() -> Iterator[Any]:
    """A PostgreSQL 15 cluster of our own on a free port (``tests.integration.openzaak_server.Postgres``),
    removed afterwards. ``new_database(pg)`` gives the URL of a fresh database on it."""
    import shutil

    from tests.integration.openzaak_server import DB_USER, Postgres

    if os.geteuid() != 0:
        raise RuntimeError("the PostgreSQL proofs start a cluster as the postgres user: run them as root")
    base = Path(tempfile.mkdtemp(prefix="loket-proof-pg."))
    base.chmod(0o755)
    pg = Postgres(base)
    try:
        pg.init()
        pg.start()
        pg.user = DB_USER  # type: ignore[attr-defined]
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def new_database(pg: Any) -> str:
    name = f"proof_{uuid.uuid4().hex[:12]}"
    pg.psql(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://{pg.user}@127.0.0.1:{pg.port}/{name}"


def serve_on(tmp: Path, name: str, db_url: str, zs: Zaaksysteem, **delivery: object) -> Server:
    """A ``serve`` on ``db_url`` (shared by several when they pass the same URL) delivering into ``zs``."""
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    toml = delivery_toml(zs, copy_mappings(folder), **delivery)
    config = write_config(folder / "config.toml", db_url, port, toml)
    return Server(config=config, db_url=db_url, port=port, log_path=folder / "server.log")


# -- the proofs -----------------------------------------------------------------------------------------------


def prove_kill(
    tmp: Path,
    messages: int,
    kills: int = 3,
    seed: int | None = None,
    clients: int = 8,
    workers: int = 2,
    validate: bool = True,
) -> dict[str, Any]:
    """``serve`` killed with SIGKILL ``kills`` times at random moments of intake and delivery, restarted each
    time; the loket resends what got no Bv03. Every message is delivered exactly once."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    zsys = FakeZaaksysteem(validate)
    srv = make_server(tmp, extra_toml=delivery_toml(zsys.zs, copy_mappings(tmp), workers=workers, lease_seconds=5))
    engine = create_engine(srv.db_url)
    # the first kill while the loket posts (when that share of the messages is acknowledged), the others
    # when intake plus delivery has made that much progress (of 2 * messages): while deliveries run
    # behind the intake, or after the last Bv03
    first = rng.uniform(0.2, 0.8)
    later = sorted(rng.uniform(0.5, 0.95) for _ in range(kills - 1))
    moments: list[Callable[[int, int], bool]] = [lambda acked, _: acked >= first * messages]
    moments += [lambda acked, done, m=m: (acked + done) / (2 * messages) >= m for m in later]
    killed_at: list[str] = []
    t0 = time.monotonic()
    try:
        srv.start()
        loket = Loket([srv.soap_url], [aanvraag(n) for n in range(messages)], clients=clients).start()
        for moment in moments:
            deadline = time.monotonic() + max(120, messages / 2)
            while not moment(len(loket.acked), done := delivery_states(engine).get("done", 0)):
                if time.monotonic() > deadline:
                    raise AssertionError(f"stalled before kill {len(killed_at) + 1}: {loket.summary()}, {done} done")
                time.sleep(0.02)
            srv.kill9()
            killed_at.append(f"{len(loket.acked)} acknowledged, {done} delivered")
            srv.start()
        loket.join(max(120, messages / 2))
        assert not loket.problems, loket.problems[:3]
        with engine.connect() as conn:
            stored = {r[0] for r in conn.execute(text("SELECT referentienummer FROM messages"))}
        lost = sorted(set(range(messages)) - {int(ref.rsplit("-", 1)[1]) for ref in stored})
        assert not lost, f"{len(lost)} acknowledged messages not stored, e.g. {lost[:5]}"
        wait_delivered(engine, messages, max(120, messages / 2))
        figures = check_exactly_once(zsys.fake, engine, messages)
        assert len(killed_at) == kills
        return {
            **figures,
            "seconds": round(time.monotonic() - t0, 1),
            "seed": seed,
            "kills": killed_at,
            "answers": dict(loket.answers),
        }
    finally:
        engine.dispose()
        srv.stop()
        zsys.stop()


def prove_zaaksysteem_down(
    tmp: Path,
    messages: int,
    outage: float,
    backoff: tuple[float, float] = (0.5, 2.0),
    max_attempts: int = 10,
    workers: int = 2,
    validate: bool = True,
) -> dict[str, Any]:
    """The zaaksysteem refuses connections for ``outage`` seconds while messages keep coming; once it is
    back every one is delivered by the retries alone (no dead, no resend). ``backoff``: (initial, max)."""
    zsys = FakeZaaksysteem(validate)
    delivery = {
        "workers": workers,
        "backoff_initial": backoff[0],
        "backoff_max": backoff[1],
        "max_attempts": max_attempts,
    }
    srv = make_server(tmp, extra_toml=delivery_toml(zsys.zs, copy_mappings(tmp), **delivery))
    engine = create_engine(srv.db_url)
    before = max(1, messages // 10)
    bodies = [aanvraag(n) for n in range(messages)]
    t0 = time.monotonic()
    try:
        srv.start()
        Loket([srv.soap_url], bodies[:before], clients=2).start().join(60)
        wait_delivered(engine, before, 60)
        zsys.stop()
        down = time.monotonic()
        Loket([srv.soap_url], bodies[before:], clients=4).start().join(max(60, messages / 2))
        acked_during = time.monotonic() - down
        remaining = outage - acked_during
        assert remaining > 0, f"intake took {acked_during:.1f} s, longer than the outage of {outage:g} s"
        time.sleep(remaining)
        during = delivery_states(engine)
        assert during.get("done", 0) == before and not set(during) & {"dead", "needs-attention"}, during
        with engine.connect() as conn:
            retried = conn.execute(text("SELECT count(*) FROM deliveries WHERE attempts >= 2")).scalar_one()
        assert retried > 0, "no delivery was tried during the outage"
        zsys.start()
        up = time.monotonic()
        wait_delivered(engine, messages, max(120, backoff[1] * 2 + messages))
        figures = check_exactly_once(zsys.fake, engine, messages)
        assert srv.proc is not None and srv.proc.poll() is None
        return {
            **figures,
            "outage_seconds": round(up - down, 1),
            "drained_after_seconds": round(time.monotonic() - up, 1),
            "states_during": during,
            "retried_during": retried,
            "seconds": round(time.monotonic() - t0, 1),
        }
    finally:
        engine.dispose()
        srv.stop()
        zsys.stop()


def prove_two_serves(
    tmp: Path, messages: int, db_url: str, clients: int = 8, workers: int = 2, validate: bool = True
) -> dict[str, Any]:
    """Two ``serve`` processes on one PostgreSQL share the messages (each posted to one of them, every tenth
    also to the other) and their delivery: each is delivered exactly once, and both delivered."""
    zsys = FakeZaaksysteem(validate)
    servers = [serve_on(tmp, f"serve{i}", db_url, zsys.zs, workers=workers) for i in range(2)]
    engine = create_engine(db_url)
    t0 = time.monotonic()
    try:
        for srv in servers:
            srv.start()
        loket = Loket([s.soap_url for s in servers], [aanvraag(n) for n in range(messages)], clients, cross_every=10)
        loket.start().join(max(120, messages / 2))
        assert not loket.problems, loket.problems[:3]
        wait_delivered(engine, messages, max(120, messages / 2))
        figures = check_exactly_once(zsys.fake, engine, messages)
        delivered_by = [sum(1 for x in log_lines(s.log_path) if x.get("event") == "delivered") for s in servers]
        assert sum(delivered_by) == messages and min(delivered_by) > 0, delivered_by
        return {
            **figures,
            "delivered_by": delivered_by,
            "answers": dict(loket.answers),
            "seconds": round(time.monotonic() - t0, 1),
        }
    finally:
        engine.dispose()
        for srv in servers:
            srv.stop()
        zsys.stop()


def prove_postgres_outage(
    tmp: Path,
    messages: int,
    pg: Any,
    outages: int = 2,
    outage: float = 3.0,
    clients: int = 2,
    interval: float = 0.2,
    workers: int = 2,
    validate: bool = True,
) -> dict[str, Any]:
    """PostgreSQL stopped ``outages`` times for ``outage`` seconds while the loket posts: StUF046 during,
    Bv03 after, the same ``serve`` process throughout, every message delivered once, and the serve log
    holds one line per outage per component that polls the store (no traceback per poll)."""
    zsys = FakeZaaksysteem(validate)
    db_url = new_database(pg)
    srv = serve_on(tmp, "serve", db_url, zsys.zs, workers=workers, lease_seconds=5)
    engine = create_engine(db_url, pool_pre_ping=True)
    t0 = time.monotonic()
    windows: list[tuple[float, float]] = []
    try:
        srv.start()
        assert srv.proc is not None
        pid = srv.proc.pid
        bodies = [aanvraag(n) for n in range(messages)]
        loket = Loket([srv.soap_url], bodies, clients, pause=0.2, interval=interval).start()
        for k in range(outages):
            # under load: while messages come in and deliveries run
            wait_for(lambda k=k: len(loket.acked) >= (k + 1) * messages // (outages + 2), 120, "intake")
            pg.stop()
            start = time.monotonic()
            time.sleep(outage)
            pg.start()
            windows.append((start, time.monotonic()))
            delivered = delivery_states(engine).get("done", 0)
            wait_for(
                lambda d=delivered: delivery_states(engine).get("done", 0) > min(d, messages - 1),
                120,
                "delivery to resume",
            )
        loket.join(max(120, messages / 2))
        assert not loket.problems, loket.problems[:3]
        wait_delivered(engine, messages, max(120, messages / 2))
        assert srv.proc.poll() is None and srv.proc.pid == pid, "serve was restarted"
        for start, end in windows:
            assert any(start <= t <= end + 1 for t in loket.stuf046_at), "no StUF046 during an outage"
            assert any(t > end for t in loket.bv03_at), "no Bv03 after an outage"
        figures = check_exactly_once(zsys.fake, engine, messages)
        lines = log_lines(srv.log_path)
        # every warning or worse, per component (logger) and text; a fault is the answer to one request
        by_component = Counter(
            (x.get("logger"), x.get("event"), bool(x.get("exception")))
            for x in lines
            if x.get("level") not in ("debug", "info") and x.get("event") != "message rejected"
        )
        assert not [k for k in by_component if k[2]], f"tracebacks in the serve log: {by_component}"
        assert by_component[("adapter.delivery", STORE_DOWN, False)] == outages, by_component
        assert all(v <= outages for v in by_component.values()), f"more than one line per outage: {by_component}"
        return {
            **figures,
            "outages": [round(e - s, 1) for s, e in windows],
            "answers": dict(loket.answers),
            "warning_lines": {f"{k[0]}: {k[1]}": v for k, v in by_component.items()},
            "fault_lines": sum(1 for x in lines if x.get("event") == "message rejected"),
            "resumed_lines": sum(1 for x in lines if x.get("event") == "store available again; delivery resumed"),
            "seconds": round(time.monotonic() - t0, 1),
        }
    finally:
        engine.dispose()
        srv.stop()
        zsys.stop()


# -- the full-length runs ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.proofs", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="proof", required=True)
    k = sub.add_parser("kill", help="serve killed with SIGKILL at random moments and restarted")
    k.add_argument("--messages", type=int, default=2000)
    k.add_argument("--kills", type=int, default=3)
    k.add_argument("--seed", type=int)
    z = sub.add_parser("zaaksysteem-down", help="the zaaksysteem refuses connections for a while")
    z.add_argument("--messages", type=int, default=200)
    z.add_argument("--outage", type=float, default=300, help="seconds (default 5 minutes)")
    z.add_argument("--backoff-initial", type=float, default=30, help="[delivery] backoff_initial (default as shipped)")
    z.add_argument("--backoff-max", type=float, default=3600, help="[delivery] backoff_max (default as shipped)")
    t = sub.add_parser("two-serves", help="two serve processes on one PostgreSQL")
    t.add_argument("--messages", type=int, default=2000)
    p = sub.add_parser("postgres-outage", help="PostgreSQL stopped and started under load")
    p.add_argument("--messages", type=int, default=600)
    p.add_argument("--outages", type=int, default=2)
    p.add_argument("--outage", type=float, default=30, help="seconds per outage")
    for sp in (k, z, t, p):
        sp.add_argument("--workers", type=int, default=2, help="[delivery] workers per serve")
        sp.add_argument("--no-validate", action="store_true", help="the fake ZGW skips its OpenAPI checks (speed)")
    args = ap.parse_args(argv)
    opts = {"workers": args.workers, "validate": not args.no_validate}
    tmp = Path(tempfile.mkdtemp(prefix=f"loket-proof-{args.proof}."))
    print(f"{args.proof}: working in {tmp}", flush=True)
    t0 = time.monotonic()
    run: Callable[[], dict[str, Any]]
    if args.proof == "kill":
        run = lambda: prove_kill(tmp, args.messages, args.kills, args.seed, **opts)  # noqa: E731
    elif args.proof == "zaaksysteem-down":
        run = lambda: prove_zaaksysteem_down(  # noqa: E731
            tmp, args.messages, args.outage, (args.backoff_initial, args.backoff_max), **opts
        )
    else:
        with postgres() as pg:
            if args.proof == "two-serves":
                figures = prove_two_serves(tmp, args.messages, new_database(pg), **opts)
            else:
                figures = prove_postgres_outage(tmp, args.messages, pg, args.outages, args.outage, **opts)
        run = lambda: figures  # noqa: E731
    figures = run()
    print(json.dumps(figures, indent=1, default=str))
    print(f"{args.proof}: OK in {time.monotonic() - t0:.0f} s (logs in {tmp})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
