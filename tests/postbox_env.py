"""What the postbus tests against the real sshd share (tests/test_postbox_sftp.py, tests/test_postbox_mirror.py):
the sshd fixture, closing the cached postbox sessions after each test, accepting an aanvraag through the real
inbound channel and one round of delivery work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from adapter.postbox import pickup
from adapter.services import Services
from tests.sftp_server import SftpServer, serve
from tests.soap import with_reference


@pytest.fixture
def sftp_server() -> Iterator[SftpServer]:
    yield from serve()


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    for pb in list(pickup._cache.values()):
        pb.close()
    pickup._cache.clear()


def receive_lvo(sv: Services, body: bytes) -> int:
    """Accept BODY (a StUF-LVO message, under a referentienummer of its own) through the real inbound channel;
    the id of the message stored."""
    from adapter.inbound.stuf_lvo import StufLvoChannel

    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    raw = with_reference(body, uuid.uuid4().hex[:30])
    channel.accept(channel.receive(raw, uuid.uuid4().hex))
    with sv.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(id) FROM messages")).scalar_one())


def work(sv: Services) -> list[str]:
    assert sv.outbox is not None
    return [f"{r.state}: {r.detail}" for r in sv.outbox.work_once(limit=10)]
