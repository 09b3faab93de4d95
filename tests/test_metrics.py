"""``/metrics`` (issue 10, point 3): Prometheus' own parser reads it, and its counts are the store's, equal to
``messages stats``; the delivery latency histogram counts every delivered message."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from adapter.app import build_app
from adapter.services import Services
from tests.conftest import ROOT
from tests.delivery_env import needs_zgw_specs
from tests.soap import fixture, with_reference

pytestmark = needs_zgw_specs


def receive(sv: Services, reference: str, name: str = "omvDi01AanbiedenAanvraag", nummer: int = 1234567) -> None:
    """A message through the real inbound channel; ``nummer``: its aanvraagnummer (one zaak each)."""
    from adapter.inbound.stuf_lvo import StufLvoChannel

    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    body = with_reference(fixture(name), reference).replace(b">1234567<", f">{nummer}<".encode())
    channel.accept(channel.receive(body, uuid.uuid4().hex))


def scrape(sv: Services) -> dict[str, list[Any]]:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(sv), client=("127.0.0.1", 9999))
        async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as client:
            return await client.get("/metrics")

    r = asyncio.run(get())
    assert r.status_code == 200 and r.headers["content-type"] == CONTENT_TYPE_LATEST  # Prometheus' text format
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(r.text):  # prometheus-client's own parser
        out.setdefault(family.name, []).extend(family.samples)
    return out


def by_label(samples: list[Any], label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples}


@pytest.fixture
def sv(delivering: Any, zs: Any) -> Any:
    """Two delivered aanvragen, one retrying after a 503, one aanvulling not yet run."""
    s = delivering(backoff_initial=600, backoff_max=3600)
    for n in (1, 2):
        receive(s, f"MET-{n}", nummer=7100000 + n)
        assert [r.state for r in s.outbox.work_once(limit=1)] == ["done"]
    zs.fake.fail_next("POST", "/zaken", status=503, times=5)
    receive(s, "MET-3", nummer=7100003)
    assert [r.state for r in s.outbox.work_once(limit=1)] == ["retry"]
    receive(s, "MET-4", "vrgDi01IndienenAanvulling", nummer=7100001)
    return s


def test_metrics_parse_and_equal_messages_stats(sv: Any) -> None:
    m = scrape(sv)
    stats = json.loads(
        subprocess.run(
            [sys.executable, "-m", "adapter", "--config", str(sv.settings.source), "messages", "stats", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    messages: dict[str, float] = {}
    for s in m["loket_messages"]:
        messages[s.labels["state"]] = messages.get(s.labels["state"], 0) + s.value
    assert messages == stats["messages"] == {"delivered": 2, "retrying": 1, "received": 1}
    by_type = {(s.labels["type"], s.labels["state"]): s.value for s in m["loket_messages"]}
    assert by_type[("vrgDi01IndienenAanvulling", "received")] == 1
    assert {s.labels["channel"] for s in m["loket_messages"]} == {"stuf-lvo"}

    deliveries = {k: v for k, v in by_label(m["loket_deliveries"], "state").items() if v}
    assert deliveries == stats["deliveries"] == {"done": 2, "retry": 1, "pending": 1}
    assert by_label(m["loket_deliveries"], "state")["dead"] == 0  # every state named, zero included
    assert m["loket_deliveries_for_an_operator"][0].value == 0
    assert by_label(m["loket_delivery_attempts"], "status") == {"ok": 2, "error": 1}

    latency = {s.labels.get("le"): s.value for s in m["loket_delivery_latency_seconds"] if s.name.endswith("_bucket")}
    assert latency["+Inf"] == 2 and latency["60.0"] == 2  # both delivered within a minute of their receipt
    count = next(s.value for s in m["loket_delivery_latency_seconds"] if s.name.endswith("_count"))
    assert count == 2
    assert "process_resident_memory_bytes" in m  # this process's own figures too


def test_dead_and_needs_attention_are_counted_for_the_operator(sv: Any, zs: Any) -> None:
    from sqlalchemy import text

    with sv.engine.begin() as conn:  # as the worker leaves them after the last attempt or a permanent error
        conn.execute(text("UPDATE deliveries SET state='dead' WHERE state='retry'"))
        conn.execute(text("UPDATE deliveries SET state='needs-attention' WHERE state='pending'"))
    m = scrape(sv)
    assert by_label(m["loket_deliveries"], "state")["dead"] == 1
    assert by_label(m["loket_deliveries"], "state")["needs-attention"] == 1
    assert m["loket_deliveries_for_an_operator"][0].value == 2


def test_job_runs_and_bytes_are_counted(sv: Any) -> None:
    from adapter.jobs.scheduler import run_job

    run_job(sv, "purge", force=True)
    m = scrape(sv)
    runs = {(s.labels["job"], s.labels["status"]): s.value for s in m["loket_job_runs"]}
    assert runs == {("purge", "ok"): 1}
    assert by_label(m["loket_job_last_start_seconds"], "job")["purge"] > 1.7e9
    assert m["loket_werkmap_bytes"][0].value == 0  # no STAM here (the next test has)
    assert m.get("loket_postbox_pickup_bytes", []) == []


def test_werkmap_bytes_are_the_documents_fetched(tmp_path: Any, zs: Any, werkmap: tuple[Any, str]) -> None:
    """A STAM verzoek delivered: the bytes its documents and PDF brought from the werkmap, as the file store
    holds them."""
    from pathlib import Path

    from adapter.config import load_settings
    from adapter.inbound.stam import StamChannel
    from adapter.services import open_services
    from adapter.store.db import upgrade
    from tests.conftest import drop_database, new_database_url, write_config
    from tests.delivery_env import copy_mappings, delivery_toml
    from tests.test_stam_e2e import STAM, werkmap_toml
    from tests.test_stam_hints import REAL

    fake, url = werkmap
    db_url = new_database_url(tmp_path)
    toml = delivery_toml(zs, copy_mappings(tmp_path), workers=0) + werkmap_toml(url)
    s = open_services(load_settings(write_config(tmp_path / "config.toml", db_url, 8999, toml)))
    try:
        upgrade(s.engine)
        fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
        StamChannel(s.settings, s.writer, s.schemas).receive(fake.notificatie(REAL), "c1")
        assert [r.state for r in s.outbox.work_once()] == ["done"]
        files = Path(s.settings.source).parent / "var" / "files"
        stored = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
        assert stored > 0
        assert scrape(s)["loket_werkmap_bytes"][0].value == stored
    finally:
        s.close()
        drop_database(db_url)
