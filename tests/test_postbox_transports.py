"""Both SSH transports under the SFTP session (``[postboxes.NAME] transport``), against the real sshd: OpenSSH's
``ssh`` as a child (the default for a key login) and paramiko's own SSH. Each downloads and uploads the same
bytes, refuses a host key that is not the pinned one naming the offered fingerprint, and refuses a login the
server does not accept; ``auto`` picks by the rule in ``Postbox.transport``."""

from __future__ import annotations

import hashlib
import os
import subprocess
from io import BytesIO
from pathlib import Path

import pytest

from adapter.config import PostboxSettings
from adapter.postbox.client import Postbox, PostboxRefused
from tests import postbox_env
from tests.sftp_server import SftpServer
from tests.test_postbox_unit import HOST_KEY

sftp_server = postbox_env.sftp_server


def box(srv: SftpServer, transport: str, **changes: object) -> Postbox:
    values: dict[str, object] = {
        "host": srv.host,
        "port": srv.port,
        "user": srv.user,
        "key_file": str(srv.client_key),
        "host_key": srv.host_key_line,
        "inbox": "/inbox",
        "outbox": "/inbox",  # the test user may write there
        "timeout": 10,
        "reconnect_initial": 0,
        "transport": transport,
    }
    settings = PostboxSettings.model_validate(values | changes)
    return Postbox("olo", settings, Path(settings.key_file) if settings.key_file else None)


@pytest.mark.parametrize("transport", ["openssh", "paramiko"])
def test_each_transport_reads_and_writes_the_same_bytes(sftp_server: SftpServer, transport: str) -> None:
    data = os.urandom(3_000_000)
    sftp_server.put("1234567_big.bin", data)
    pb = box(sftp_server, transport)
    try:
        got = hashlib.sha256()
        pb.read_inbox("1234567_big.bin", got.update)
        assert got.hexdigest() == hashlib.sha256(data).hexdigest()
        assert pb.transport_used == transport

        pb.write_outbox("up.bin", BytesIO(data), 0, len(data))
        assert pb.sha256_outbox("up.bin", len(data)) == hashlib.sha256(data).hexdigest()
        assert (sftp_server.inbox / "up.bin").read_bytes() == data
        pb.close()
        assert pb.stat_outbox("up.bin") is not None  # a closed session is opened again
    finally:
        pb.close()


@pytest.mark.parametrize("transport", ["openssh", "paramiko"])
def test_each_transport_refuses_a_host_key_that_is_not_the_pinned_one(
    sftp_server: SftpServer, transport: str, tmp_path: Path
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    pb = box(sftp_server, transport, host_key=other)
    with pytest.raises(PostboxRefused) as refused:
        pb.check()
    text = str(refused.value)
    assert f"host {sftp_server.host}:{sftp_server.port} offered host key ssh-ed25519 " in text
    assert sftp_server.host_fingerprint in text and "not the pinned" in text, text


@pytest.mark.parametrize("transport", ["openssh", "paramiko"])
def test_each_transport_refuses_a_login_the_server_does_not_accept(
    sftp_server: SftpServer, transport: str, tmp_path: Path
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    pb = box(sftp_server, transport, key_file=str(tmp_path / "stranger"))
    with pytest.raises(PostboxRefused) as refused:
        pb.check()
    assert f"login as {sftp_server.user} on {sftp_server.host}:{sftp_server.port} refused" in str(refused.value)


def test_auto_takes_openssh_for_a_key_login_and_paramiko_otherwise(
    sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert box(sftp_server, "auto").transport() == "openssh"
    assert box(sftp_server, "auto", password="p").transport() == "paramiko"  # key and password: paramiko tries both
    monkeypatch.setenv("PATH", "/nonexistent")  # no ssh installed
    assert box(sftp_server, "auto").transport() == "paramiko"
    with pytest.raises(PostboxRefused, match="no ssh command"):
        box(sftp_server, "openssh").check()


def test_openssh_with_a_password_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match='transport "openssh" logs in with key_file alone'):
        PostboxSettings(host="h", user="u", password="p", host_key=HOST_KEY, transport="openssh")


def test_the_ssh_folder_of_a_process_that_is_gone_is_removed(sftp_server: SftpServer) -> None:
    """``kill -9`` of serve leaves its ssh folder (known_hosts, ssh's stderr); the next connect removes it."""
    import tempfile

    from adapter.postbox.client import SSH_DIR_PREFIX

    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"{SSH_DIR_PREFIX}{proc.pid}-"))
    alive = Path(tempfile.mkdtemp(prefix=f"{SSH_DIR_PREFIX}1-"))  # pid 1 runs
    pb = box(sftp_server, "openssh")
    try:
        pb.check()
        ours = [p for p in Path(tempfile.gettempdir()).glob(f"{SSH_DIR_PREFIX}{os.getpid()}-*")]
        assert len(ours) == 1 and (ours[0] / "known_hosts").is_file()
    finally:
        pb.close()
    assert not stale.exists() and alive.exists()
    assert not ours[0].exists()  # closed: its own folder removed
    alive.rmdir()
