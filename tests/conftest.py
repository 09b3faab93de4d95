"""Shared fixtures: a fresh database per test module (SQLite file, or a real PostgreSQL when
``LOKET_TEST_DATABASE_URL`` points at one) and a real adapter server in a subprocess, spoken to over HTTP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = ROOT / "fixtures"
PG_URL = os.environ.get("LOKET_TEST_DATABASE_URL", "")

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared (contract, reference schemas) is absent")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server subprocess; kill it when it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_database_url(tmp_path: Path) -> str:
    """A database nobody else uses: a new SQLite file, or a new database on the test PostgreSQL."""
    if not PG_URL:
        return f"sqlite:///{tmp_path / 'adapter.db'}"
    return create_database(PG_URL, "t")


def drop_database(url: str) -> None:
    if PG_URL:
        drop_database_at(PG_URL, url)


def create_database(admin_url: str, prefix: str) -> str:
    """A new, empty database on the PostgreSQL server of ``admin_url``; its URL (also used by bench/)."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database_at(admin_url: str, url: str) -> None:
    """Drop ``url``'s database on the server of ``admin_url``, whoever is still connected to it."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


NO_DELIVERY = "[delivery]\nenabled = false\n"


def write_config(path: Path, db_url: str, port: int, extra_toml: str = "", **inbound: object) -> Path:
    extra = "".join(
        f"{k} = {v!r}\n".replace("'", '"').replace("True", "true").replace("False", "false") for k, v in inbound.items()
    )
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
environment = "production"
request_threads = 8

[store]
url = "{db_url}"
lock_timeout_ms = 800

[inbound]
{extra}
{extra_toml or NO_DELIVERY}

[[stuf.ontvangers]]
organisatie = "00000001002564440000"
applicatie = "ZAAKSYSTEEM"

[[stuf.zenders]]
organisatie = "00000001800866472000"
applicatie = "OLO"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Server:
    """A running ``loket-adapter serve`` subprocess."""

    config: Path
    db_url: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: "https" for a server with [server.tls]; ``probe``: httpx options (verify, cert) for its start check
    scheme: str = "http"
    probe: dict[str, Any] = field(default_factory=dict)
    #: more options of ``serve`` (e.g. ``--record DIR``)
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def soap_url(self) -> str:
        return f"{self.url}/soap/stuf-lvo"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adapter", "--config", str(self.config), "serve", *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=log,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            answer = "no answer"
            try:
                status = httpx.get(f"{self.url}/healthz", timeout=0.5, **self.probe).status_code
                if status == 200:
                    return
                answer = f"/healthz {status}"
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # after an error answer too: a busy loop here ran into mutmut's CPU limit
        raise RuntimeError(f"server did not start in 30 s ({answer})")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            stop_process(self.proc)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def make_server(tmp_path: Path, extra_toml: str = "", **inbound: object) -> Server:
    db_url = new_database_url(tmp_path)
    port = free_port()
    config = write_config(tmp_path / "config.toml", db_url, port, extra_toml, **inbound)
    return Server(config=config, db_url=db_url, port=port, log_path=tmp_path / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("server"))
    srv.start()
    yield srv
    srv.stop()
    drop_database(srv.db_url)


@pytest.fixture(scope="module")
def db(server: Server) -> Iterator[object]:
    """An engine on the server's database, for checking what was stored."""
    engine = create_engine(server.db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def zs() -> Iterator[object]:
    """A fake ZGW zaaksysteem on a real port (``tests.delivery_env.Zaaksysteem``)."""
    from tests.delivery_env import start_zaaksysteem

    z = start_zaaksysteem()
    yield z
    z.stop()


@pytest.fixture
def services(tmp_path: Path, zs: object) -> Iterator[object]:
    """The adapter's parts in-process (no web server): store, mappings, outbox, ZGW target at ``zs``."""
    from adapter.config import load_settings
    from adapter.services import open_services
    from adapter.store.db import upgrade
    from tests.delivery_env import copy_mappings, delivery_toml

    url = new_database_url(tmp_path)
    toml = delivery_toml(zs, copy_mappings(tmp_path), workers=0)  # type: ignore[arg-type]
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999, toml)))
    upgrade(sv.engine)
    yield sv
    sv.close()
    drop_database(url)


@pytest.fixture
def delivering(tmp_path: Path, zs: object) -> Iterator[object]:
    """A factory of in-process services (store, mappings, outbox, ZGW target at ``zs``) with the
    ``[delivery]`` settings a test needs; no worker threads: the test drives ``work_once`` itself."""
    from adapter.config import load_settings
    from adapter.services import open_services
    from adapter.store.db import upgrade
    from tests.delivery_env import copy_mappings, delivery_toml

    opened: list[tuple[Any, str]] = []

    def open_(extra_toml: str = "", **delivery: object) -> Any:
        home = tmp_path / f"adapter{len(opened)}"  # each its own config, mappings and store
        home.mkdir()
        url = new_database_url(home)
        toml = delivery_toml(zs, copy_mappings(home), **{"workers": 0, **delivery})  # type: ignore[arg-type]
        sv = open_services(load_settings(write_config(home / "config.toml", url, 8999, toml + extra_toml)))
        upgrade(sv.engine)
        opened.append((sv, url))
        return sv

    yield open_
    for sv, url in opened:
        sv.close()
        drop_database(url)


@pytest.fixture
def coupled(delivering: Any) -> Iterator[tuple[Any, Any]]:
    """In-process services with ``koppel_zaak_aan_aanvraag`` and the fake loket (which validates what it
    receives against our StUF-LVO schema) as ``[loket]``: (services, fake loket)."""
    from adapter.simulation.fake_loket import ENDPOINT_PATH, FakeLoket
    from adapter.simulation.serving import serve_in_thread

    loket = FakeLoket()
    url, stop = serve_in_thread(loket)
    toml = f"""
[loket]
url = "{url}{ENDPOINT_PATH}"
zender = {{ organisatie = "00000001002564440000", applicatie = "ZAAKSYSTEEM" }}
ontvanger = {{ organisatie = "00000001800866472000", applicatie = "OLO" }}
"""
    yield delivering(extra_toml=toml, koppel_zaak_aan_aanvraag="true"), loket
    stop()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[object]:
    """A migrated store of its own (SQLite file, or a new PostgreSQL database) for store-level tests."""
    from adapter.store.db import make_engine, upgrade

    url = new_database_url(tmp_path)
    e = make_engine(url, lock_timeout_ms=5000)
    upgrade(e)
    yield e
    e.dispose()
    drop_database(url)


@pytest.fixture
def inbound(tmp_path: Path) -> Iterator[object]:
    """Store, schemas and group-commit writer in-process (no outbox, no targets): what the inbound channels
    and HTTP endpoints run on."""
    from adapter.config import load_settings
    from adapter.services import open_services
    from adapter.store.db import upgrade

    url = new_database_url(tmp_path)
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999)), with_outbox=False)
    upgrade(sv.engine)
    yield sv
    sv.close()
    drop_database(url)


@pytest.fixture
def werkmap() -> Iterator[tuple[object, str]]:
    """A fake werkmap (STAM verzoeken, documents, PDF) on a real port: (fake, base URL)."""
    from adapter.simulation.fake_werkmap import FakeWerkmap
    from adapter.simulation.fake_zgw import serve_in_thread

    fake = FakeWerkmap(oin="00000001002564440000")
    base, stop = serve_in_thread(fake.app)
    yield fake, base + fake.base_path
    stop()


def pytest_report_header() -> str:
    return f"store under test: {'PostgreSQL ' + make_url(PG_URL).render_as_string() if PG_URL else 'SQLite'}"
