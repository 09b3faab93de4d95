"""One SFTP postbox over paramiko: the only module that talks to a postbus server.

The server's host key is pinned (``[postboxes.NAME] host_key``) and loaded into the client's host keys,
with paramiko's ``RejectPolicy`` for anything else: an unknown or changed key is refused, naming host
and fingerprint, never learnt. The session is reused between calls; after a transient failure
(refused, timeout, dropped connection) the next connect waits with capped exponential backoff. A refusal
that retrying cannot fix (host key, authentication, permission denied) is ``PostboxRefused``.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import paramiko

from adapter.config import PostboxSettings
from adapter.errors import TargetError, TargetRefused
from adapter.logs import get_logger

log = get_logger("adapter.postbox")
CHUNK = 1024 * 1024


class PostboxError(TargetError):
    """A postbox could not be reached or dropped the connection (transient: retried with backoff)."""


class PostboxRefused(TargetRefused):
    """The postbox refused us in a way retrying does not fix: host key, login, permission."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:…`` fingerprint of a public key."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _Refuse(paramiko.RejectPolicy):
    """``RejectPolicy`` that says which key it saw: the operator compares it with the postbus provider's."""

    def __init__(self, postbox: str) -> None:
        self.postbox = postbox

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> NoReturn:
        raise PostboxRefused(
            f"postbox {self.postbox}: host {hostname} offered host key {fingerprint(key)}, which is not the "
            "pinned host_key; refused (check it with the provider, then set host_key)"
        )


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: int
    regular: bool


class Postbox:
    """A reused SFTP session to one postbox; thread-safe (one operation at a time)."""

    def __init__(self, name: str, settings: PostboxSettings, key_path: Path | None = None) -> None:
        self.name = name
        self.settings = settings
        self.key_path = key_path
        self._lock = threading.RLock()
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._delay = 0.0
        self._next_try = 0.0

    # -- connection ------------------------------------------------------------------------------------
    def _pinned(self) -> tuple[str, paramiko.PKey]:
        kind, data = self.settings.host_key.split()
        try:
            return kind, paramiko.PKey.from_type_string(kind, base64.b64decode(data))
        except Exception as exc:
            raise PostboxRefused(f"postbox {self.name}: host_key cannot be read: {exc}") from None

    def _host_id(self) -> str:
        s = self.settings
        return s.host if s.port == 22 else f"[{s.host}]:{s.port}"

    def _connect(self) -> paramiko.SFTPClient:
        s = self.settings
        wait = self._next_try - time.monotonic()
        if wait > 0:
            raise PostboxError(f"postbox {self.name}: reconnecting to {s.host}:{s.port} in {wait:.0f} s (backoff)")
        ssh = paramiko.SSHClient()
        kind, key = self._pinned()
        ssh.get_host_keys().add(self._host_id(), kind, key)
        ssh.set_missing_host_key_policy(_Refuse(self.name))
        pkey = None
        if self.key_path is not None:
            try:
                pkey = paramiko.PKey.from_path(self.key_path)
            except (OSError, paramiko.SSHException) as exc:
                raise PostboxRefused(f"postbox {self.name}: key_file {self.key_path}: {exc}") from None
        try:
            ssh.connect(
                s.host,
                s.port,
                username=s.user,
                pkey=pkey,
                password=s.password,
                timeout=s.timeout,
                banner_timeout=s.timeout,
                auth_timeout=s.timeout,
                channel_timeout=s.timeout,
                look_for_keys=False,
                allow_agent=False,
            )
            sftp = ssh.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(s.timeout)
        except PostboxRefused:
            ssh.close()
            raise
        except paramiko.BadHostKeyException as exc:
            ssh.close()
            raise PostboxRefused(
                f"postbox {self.name}: host {s.host}:{s.port} offered host key {fingerprint(exc.key)}, not the "
                f"pinned {fingerprint(exc.expected_key)}; refused (a changed key: check it with the provider)"
            ) from None
        except paramiko.AuthenticationException as exc:
            ssh.close()
            raise PostboxRefused(
                f"postbox {self.name}: login as {s.user} on {s.host}:{s.port} refused: {exc}"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            ssh.close()
            self._delay = min(self.settings.reconnect_max, self._delay * 2 or self.settings.reconnect_initial)
            self._next_try = time.monotonic() + self._delay
            why = str(exc) or type(exc).__name__
            raise PostboxError(f"postbox {self.name}: cannot connect to {s.host}:{s.port}: {why}") from None
        self._ssh, self._sftp = ssh, sftp
        self._delay, self._next_try = 0.0, 0.0
        log.info("postbox connected", postbox=self.name, host=s.host, port=s.port)
        return sftp

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is not None and self._ssh is not None:
            transport = self._ssh.get_transport()
            if transport is not None and transport.is_active():
                return self._sftp
            self.close()
        return self._connect()

    def close(self) -> None:
        with self._lock:
            if self._ssh is not None:
                self._ssh.close()
            self._ssh = self._sftp = None

    @contextmanager
    def _op(self, what: str) -> Iterator[paramiko.SFTPClient]:
        """One operation on the session; maps failures to our errors (a dropped session is closed)."""
        with self._lock:
            sftp = self._session()
            try:
                yield sftp
            except PermissionError as exc:
                raise PostboxRefused(
                    f"postbox {self.name}: {what}: permission denied ({exc.strerror or exc})"
                ) from None
            except FileNotFoundError:
                raise PostboxRefused(f"postbox {self.name}: {what}: no such file or directory") from None
            except OSError as exc:
                if exc.errno == errno.EACCES:
                    raise PostboxRefused(f"postbox {self.name}: {what}: permission denied") from None
                if isinstance(exc, (socket.timeout, ConnectionError)):
                    self.close()
                    raise PostboxError(f"postbox {self.name}: {what}: {exc or 'timed out'}") from None
                # an SFTP status the server gave (e.g. SSH_FX_FAILURE): say it, retry next time
                raise PostboxError(f"postbox {self.name}: {what}: {exc}") from None
            except (EOFError, paramiko.SSHException) as exc:
                self.close()
                raise PostboxError(
                    f"postbox {self.name}: {what}: connection lost ({exc or type(exc).__name__})"
                ) from None

    # -- operations ------------------------------------------------------------------------------------
    def _path(self, directory: str, name: str = "") -> str:
        return f"{directory.rstrip('/')}/{name}" if name else directory

    def check(self) -> None:
        """Connect (or reuse) and list the inbox: raises what is wrong."""
        with self._op(f"list {self.settings.inbox}") as sftp:
            sftp.listdir(self.settings.inbox)

    def list_inbox(self) -> list[RemoteFile]:
        with self._op(f"list {self.settings.inbox}") as sftp:
            entries = sftp.listdir_attr(self.settings.inbox)
        return [
            RemoteFile(
                e.filename,
                int(e.st_size or 0),
                int(e.st_mtime or 0),
                e.st_mode is not None and stat.S_ISREG(e.st_mode),
            )
            for e in entries
        ]

    def stat_inbox(self, name: str) -> RemoteFile:
        path = self._path(self.settings.inbox, name)
        with self._op(f"stat {path}") as sftp:
            e = sftp.lstat(path)
        return RemoteFile(
            name, int(e.st_size or 0), int(e.st_mtime or 0), e.st_mode is not None and stat.S_ISREG(e.st_mode)
        )

    def read_inbox(self, name: str, consume: Callable[[bytes], None], offset: int = 0) -> None:
        """Stream an inbox file from ``offset`` to ``consume`` in chunks (reads pipelined ahead; never whole
        in memory)."""
        path = self._path(self.settings.inbox, name)
        with self._op(f"read {path}") as sftp, sftp.open(path, "rb") as remote:
            remote.seek(offset)
            remote.prefetch()
            while chunk := remote.read(CHUNK):
                consume(chunk)

    def move_to_processed(self, name: str) -> None:
        """Move an inbox file to ``processed`` (same name; an existing file there is replaced)."""
        src = self._path(self.settings.inbox, name)
        dst = self._path(self.settings.processed, name)
        with self._op(f"move {src} to {dst}") as sftp:
            try:
                sftp.posix_rename(src, dst)
            except FileNotFoundError:
                sftp.lstat(dst)  # moved by an earlier run that stopped before recording it: done
            except OSError:
                sftp.rename(src, dst)  # a server without the posix-rename extension
