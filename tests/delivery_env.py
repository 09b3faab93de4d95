"""Test environment for delivery: a fake ZGW zaaksysteem (validating against the official OpenAPI files)
on a real port, mapping files, and a config that points an adapter at them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from adapter.simulation.config_text import zgw_target_toml
from adapter.simulation.fake_zgw.app import SPECS_DIR
from tests.conftest import ROOT, Server, drop_database, make_server
from tests.soap import LVO, fixture, post, with_reference

#: the official OpenAPI files the fake ships (adapter/simulation/fake_zgw/specs/README.md)
ZGW_SPECS = SPECS_DIR
needs_zgw_specs = pytest.mark.skipif(not ZGW_SPECS.is_dir(), reason="the fake's OpenAPI files are absent")
SECRET = "a-test-secret-of-at-least-thirty-two-bytes"


@dataclass
class Zaaksysteem:
    fake: object
    base_url: str
    stop: Callable[[], None]

    def target_toml(self, name: str = "zaaksysteem", timeout: float = 5) -> str:
        catalogus = self.fake.catalogus_url("catalogussen")  # type: ignore[attr-defined]
        return zgw_target_toml(self.base_url, SECRET, catalogus=catalogus, name=name, timeout=timeout)


def start_zaaksysteem() -> Zaaksysteem:
    from adapter.simulation.fake_zgw import FakeZgw, serve_in_thread

    fake = FakeZgw(ZGW_SPECS, client_id="loket-adapter", secret=SECRET)
    base_url, stop = serve_in_thread(fake.app)
    fake.base_url = base_url  # type: ignore[attr-defined]
    return Zaaksysteem(fake, base_url, stop)


def copy_mappings(dest: Path) -> Path:
    target = dest / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    return target


def delivery_toml(zs: Zaaksysteem, mappings: Path, **delivery: object) -> str:
    settings = {
        "workers": 2,
        "poll_interval": 0.05,
        "backoff_initial": 0.05,
        "backoff_factor": 2,
        "backoff_max": 0.5,
        "max_attempts": 5,
        "lease_seconds": 30,
        **delivery,
    }
    lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
    return f'[delivery]\nmappings_dir = "{mappings}"\n{lines}\n{zs.target_toml()}'


def adapter_with_delivery(tmp_path: Path, zs: Zaaksysteem, **delivery: object) -> Server:
    mappings = copy_mappings(tmp_path)
    return make_server(tmp_path, extra_toml=delivery_toml(zs, mappings, **delivery))


def wait_for(cond: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_with(server.config, *args)


def cli_with(config: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``loket-adapter --config CONFIG ARGS`` as an operator runs it (text out, two minutes at most)."""
    return subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class AdviesEnv:
    """An adapter (``serve``, with delivery) against the fake ZGW, with the contract's aanvraag delivered: the
    part the adviesverzoek round trips share (tests/test_advies_stuf_lvo.py, tests/test_samenwerken.py)."""

    server: Server
    zs: Zaaksysteem
    db: Engine

    def delivered(self, message_id: int) -> bool:
        with self.db.connect() as conn:
            state = conn.execute(text("SELECT state FROM deliveries WHERE message_id = :m"), {"m": message_id}).scalar()
        return state == "done"

    def last_message_id(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(text("SELECT max(id) FROM messages")).scalar_one())

    def advies(self, *args: str) -> str:
        done = cli(self.server, "advies", *args)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout


@contextmanager
def serving_with_aanvraag(
    home: Path, zs: Zaaksysteem, extra_toml: str, *, max_attempts: int, mappings: Path | None = None
) -> Iterator[AdviesEnv]:
    """A started adapter in HOME delivering to ZS (mappings: a copy of ours unless given), EXTRA_TOML appended,
    the contract's omvDi01AanbiedenAanvraag delivered (its zaak exists); stopped and its database dropped after."""
    toml = delivery_toml(zs, mappings or copy_mappings(home), max_attempts=max_attempts) + extra_toml
    server = make_server(home, extra_toml=toml)
    server.start()
    db = create_engine(server.db_url)
    e = AdviesEnv(server, zs, db)
    answer = post(
        server.soap_url,
        with_reference(fixture("omvDi01AanbiedenAanvraag"), uuid.uuid4().hex[:30]),
        f'"{LVO}/omvDi01AanbiedenAanvraag"',
    )
    assert answer.status == 200, answer.body.decode()
    aanvraag = e.last_message_id()
    wait_for(lambda: e.delivered(aanvraag), what="the aanvraag's zaak")
    yield e
    server.stop()
    db.dispose()
    drop_database(server.db_url)


def adviesverzoek_id(out: str) -> str:
    """The ADV-… id in the output of ``advies aanvragen``."""
    m = re.search(r"adviesverzoek (ADV-\d{8}-[0-9a-f]{10})", out)
    assert m, out
    return m.group(1)


def relay_message(out: str) -> int:
    """The message id of the relay in the output of ``advies aanvragen``."""
    m = re.search(r"relay: message (\d+)", out)
    assert m, out
    return int(m.group(1))
