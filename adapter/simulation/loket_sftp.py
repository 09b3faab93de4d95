"""The loket's side of the SFTP postbus in the ketensimulatie: it puts bijlagen in the inbox over SFTP (as the
loket does, through the real OpenSSH sshd of ``adapter.simulation.fakes.sftp_postbox``) and lists the folders.

Written apart from ``adapter.postbox.client`` on purpose: the loket is another party, so the runner does not
share the adapter's client (its assumptions would prove nothing). The host key is pinned as the adapter pins it.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paramiko

from adapter.simulation.werkmap_parts import document_bytes


def file_bytes(name: str, size: int) -> bytes:
    """The content the runner puts in the postbus for ``name``: ``size`` bytes, the same on every run (the
    werkmap's generator), so a scenario can name its sha256."""
    return b"".join(document_bytes(name, size))


def sha256_of(name: str, size: int) -> str:
    return hashlib.sha256(file_bytes(name, size)).hexdigest()


@contextmanager
def session(postbox: Any) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session with the postbox (``fakes.Postbox``): key login, the host key pinned."""
    kind, data = postbox.host_key.split()[:2]
    client = paramiko.SSHClient()
    key = paramiko.PKey.from_type_string(kind, base64.b64decode(data))
    client.get_host_keys().add(f"[{postbox.host}]:{postbox.port}", kind, key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        postbox.host,
        port=postbox.port,
        username=postbox.user,
        pkey=paramiko.PKey.from_path(postbox.key_file),
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    try:
        sftp = client.open_sftp()
        try:
            yield sftp
        finally:
            sftp.close()
    finally:
        client.close()


def put(postbox: Any, name: str, data: bytes) -> None:
    """Upload into the inbox (whole before the step runs the pickup)."""
    with session(postbox) as sftp:
        sftp.putfo(io.BytesIO(data), str(postbox.folder / "inbox" / name), file_size=len(data), confirm=True)


def listing(postbox: Any) -> dict[str, list[str]]:
    """The file names in the inbox and in processed, sorted (hidden part files left out)."""
    with session(postbox) as sftp:
        return {
            folder: sorted(n for n in sftp.listdir(str(postbox.folder / folder)) if not n.startswith("."))
            for folder in ("inbox", "processed")
        }
