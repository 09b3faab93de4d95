"""Adviesverzoeken through the ``postbus`` channel (issue 9 item 4), against a real OpenSSH sshd
(tests/sftp_server.py): the documents the adapter received for the aanvraag (one inline, one picked up from
the postbus) and a manifest naming the adviesverzoek are dropped in the adviseur's postbox outbox, verified,
manifest last; the relay waits for the upload and is woken by it, then the adviesverzoek is uitgezet; a
retry (also one whose checkpoint was lost) uploads nothing twice; withdrawing drops a notice. The
configuration refuses a postbus adviseur without a configured postbox, in one line."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapter.advies import store as advies_store
from adapter.advies.service import Aanvraag, aanvragen, intrekken
from adapter.errors import ConfigError
from adapter.jobs.scheduler import run_job
from adapter.services import Services
from adapter.store import uploads
from tests import test_postbox_mirror as pm
from tests.conftest import write_config
from tests.sftp_server import SftpServer
from tests.test_postbox_mirror import _outbox, mirror_now, receive, work

# the real sshd and in-process adapter of tests/test_postbox_mirror.py
sftp_server, adapter, _close_sessions = pm.sftp_server, pm.adapter, pm._close_sessions

ADVISEUR = "00000001823288444000"
FOTO = "1234567_Foto_voorgevel.jpg"
ADVISEURS = f"""
[adviseurs.odrn]
oin = "{ADVISEUR}"
naam = "Omgevingsdienst Voorbeeldregio"
channel = "postbus"
postbox = "olo"
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def due(sv: Services) -> None:
    with sv.engine.begin() as conn:
        conn.execute(text("UPDATE deliveries SET next_attempt_at = CURRENT_TIMESTAMP WHERE state = 'retry'"))


def relay_state(sv: Services, av_id: str) -> tuple[str, str]:
    with sv.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT d.state, d.last_error FROM deliveries d JOIN messages m ON m.id = d.message_id "
                "WHERE m.nummer = :n AND m.message_type = 'adviesverzoek'"
            ),
            {"n": av_id},
        ).one()
    return str(row.state), str(row.last_error or "")


def test_documents_and_manifest_are_dropped_once_then_the_adviesverzoek_is_uitgezet(
    adapter: Any, sftp_server: SftpServer
) -> None:
    sv: Services = adapter(ADVISEURS)
    foto = b"\xff\xd8\xff" + os.urandom(300_000)
    sftp_server.put(f"1234567_{FOTO}", foto)  # the aanvraag's second bijlage comes without inhoud
    assert run_job(sv, "postbox-pickup", force=True).status == "ok"
    receive(sv)
    (made,) = work(sv)
    assert made.startswith("done:"), made
    tekening = next(b for b in _bijlagen(sv) if b[0] == "1234567-1")[1]

    av, new = aanvragen(
        sv.settings,
        sv.engine,
        Aanvraag(zaak="OLO-1234567", adviseur="odrn", documents=("1234567-1", "1234567-2"), aanvraagnummer="1234567"),
        bron="cli",
    )
    assert new and av.channel == "postbus"
    (waiting,) = work(sv)  # queued, then waits for the mirror job: not uitgezet while nothing is there
    assert waiting.startswith("retry: postbus: waiting for postbox-mirror"), waiting
    assert (advies_store.get(sv.engine, av.id) or av).uitgezet_at is None

    # a retry whose checkpoint was lost queues nothing new
    with sv.engine.begin() as conn:
        assert conn.execute(text("DELETE FROM delivery_steps WHERE key = 'advies:postbus'")).rowcount == 1
    due(sv)
    (again,) = work(sv)
    assert again.startswith("retry: postbus: waiting"), again
    assert len(uploads.batch_rows(sv.engine, "olo", av.id)) == 3

    assert mirror_now(sv) == "ok: 3 to upload, 3 uploaded, 0 failed"
    assert relay_state(sv, av.id)[0] == "retry"  # woken: due now, attempts reset
    (sent,) = work(sv)
    assert sent.startswith(f"done: adviesverzoek {av.id} uitgezet bij odrn"), sent
    got = advies_store.get(sv.engine, av.id)
    assert got is not None and got.uitgezet_at is not None and got.channel_ref == f"olo/{av.id}"

    outbox = _outbox(sftp_server)
    names = {f"{av.id}_1234567_Bouwtekening.pdf": tekening, f"{av.id}_{FOTO}": foto}
    assert sorted(p.name for p in outbox.iterdir()) == sorted([*names, f"{av.id}.manifest.json"])
    for name, data in names.items():
        assert sha((outbox / name).read_bytes()) == sha(data)
    manifest = json.loads((outbox / f"{av.id}.manifest.json").read_bytes())
    assert manifest["adviesverzoek"] == av.id and manifest["aanvraagnummer"] == "1234567"
    assert manifest["adviseur"] == {"oin": ADVISEUR, "naam": "Omgevingsdienst Voorbeeldregio"}
    assert manifest["einddatum"] == av.einddatum.isoformat() and manifest["zaak"] == "OLO-1234567"
    assert manifest["batch"] == av.id and manifest["postbox"] == "olo"
    assert manifest["files"] == [{"name": n, "size": len(names[n]), "sha256": sha(names[n])} for n in sorted(names)]
    manifest_row = next(r for r in uploads.batch_rows(sv.engine, "olo", av.id) if r.kind == "manifest")
    assert all(
        manifest_row.done_at and r.done_at and manifest_row.done_at >= r.done_at
        for r in uploads.list_uploads(sv.engine, None, 100)
    )

    # a resend of the relay: nothing uploaded twice
    assert sv.outbox is not None
    with sv.engine.connect() as conn:
        relay_id = conn.execute(
            text("SELECT id FROM messages WHERE nummer = :n AND message_type = 'adviesverzoek'"), {"n": av.id}
        ).scalar_one()
    (resent,) = sv.outbox.resend([relay_id])
    assert not isinstance(resent, str) and resent.state == "done", resent
    assert mirror_now(sv) == "ok: 0 to upload, 0 uploaded, 0 failed"
    assert len(list(outbox.iterdir())) == 3

    # withdrawing tells the adviseur by a notice in the same outbox
    _, note = intrekken(sv.settings, sv.engine, av.id)
    assert "postbus" in note
    (withdrawn,) = work(sv)
    assert withdrawn.startswith("done:") and f"{av.id}.ingetrokken.json queued" in withdrawn, withdrawn
    assert mirror_now(sv) == "ok: 1 to upload, 1 uploaded, 0 failed"
    notice = json.loads((outbox / f"{av.id}.ingetrokken.json").read_bytes())
    assert notice["adviesverzoek"] == av.id and notice["aanvraagnummer"] == "1234567"


def test_a_failed_upload_keeps_the_relay_waiting_with_the_reason(adapter: Any, sftp_server: SftpServer) -> None:
    sv: Services = adapter(ADVISEURS)
    receive(sv)
    sftp_server.put(f"1234567_{FOTO}", b"foto")
    assert run_job(sv, "postbox-pickup", force=True).status == "ok"
    work(sv)
    av, _ = aanvragen(
        sv.settings,
        sv.engine,
        Aanvraag(zaak="OLO-1234567", adviseur=ADVISEUR, documents=("1234567-1",), aanvraagnummer="1234567"),
        bron="cli",
    )
    outbox = _outbox(sftp_server)
    outbox.chmod(0o555)  # the postbus user may not write there
    try:
        work(sv)
        assert mirror_now(sv).startswith("error: 2 to upload, 0 uploaded, 1 failed")
        due(sv)
        work(sv)
        state, error = relay_state(sv, av.id)
        assert state == "retry" and "failed:" in error and "ermission denied" in error, error
    finally:
        outbox.chmod(0o755)
    assert mirror_now(sv) == "ok: 2 to upload, 2 uploaded, 0 failed"
    (sent,) = work(sv)
    assert sent.startswith(f"done: adviesverzoek {av.id} uitgezet"), sent


def _bijlagen(sv: Services) -> list[tuple[str, bytes]]:
    """The inline bijlagen of the fixture aanvraag (id, bytes)."""
    import base64

    from lxml import etree

    from tests.test_postbox_mirror import AANVRAAG

    root = etree.parse(str(AANVRAAG)).getroot()
    out = []
    for b in root.iter("{*}bijlage"):
        inhoud = b.findtext("{*}inhoud")
        if inhoud:
            out.append((b.findtext("{*}bijlageId") or "", base64.b64decode(inhoud)))
    return out


@pytest.mark.parametrize(
    ("adviseur", "message"),
    [
        ('channel = "postbus"', r'adviseurs.odrn.postbox: channel "postbus" needs postbox = "NAME"'),
        (
            'channel = "postbus"\npostbox = "odrn"',
            r"adviseurs.odrn.postbox: postbox 'odrn' is not configured \(\[postboxes.odrn\]; known: olo\)",
        ),
        ('channel = "stuf-lvo"\npostbox = "olo"', r'adviseurs.odrn.postbox: only for channel "postbus"'),
    ],
)
def test_a_postbus_adviseur_needs_a_configured_postbox(tmp_path: Path, adviseur: str, message: str) -> None:
    from adapter.config import load_settings

    toml = (
        '[postboxes.olo]\nhost = "sftp.example"\nuser = "olo"\npassword = "x"\n'
        'host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"\n'
        f'[adviseurs.odrn]\noin = "{ADVISEUR}"\n{adviseur}\n'
    )
    path = write_config(tmp_path / "config.toml", "sqlite:///x.db", 8999, toml)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(path)
    assert "\n" not in str(err.value)
    ok = toml.replace(adviseur, 'channel = "postbus"\npostbox = "olo"')
    path = write_config(tmp_path / "ok.toml", "sqlite:///x.db", 8999, ok)
    assert load_settings(path).adviseurs["odrn"].postbox == "olo"


def test_the_readme_postbus_example_loads(adapter: Any) -> None:
    import tomllib

    from tests.conftest import ROOT

    text_ = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text_.split("<!-- advies postbus example -->\n```toml\n", 1)[1].split("\n```", 1)[0]
    assert tomllib.loads(block)["adviseurs"]["odrn"]["postbox"] == "olo"
    sv: Services = adapter(block)  # with the test's [postboxes.olo]
    assert sv.settings.adviseurs["odrn"].channel == "postbus"
