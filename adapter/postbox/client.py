"""One SFTP postbox: the only module that talks to a postbus server.

The server's host key is pinned (``[postboxes.NAME] host_key``): an unknown or changed key is refused,
naming host and fingerprint, never learnt. The session is reused between calls; after a transient failure
(refused, timeout, dropped connection) the next connect waits with capped exponential backoff. A refusal
that retrying cannot fix (host key, authentication, permission denied) is ``PostboxRefused``.

The SFTP protocol is always paramiko's ``SFTPClient`` (and our pipelined reads and writes on it). Under it,
two transports (``[postboxes.NAME] transport``): paramiko's own SSH (any login: key, password or both), or
the OpenSSH client as a child process, ``ssh -s sftp`` with the pinned key as its only known host, speaking
SFTP over its stdin and stdout (key login only, as git and Ansible use it). The second keeps the SSH
packets, the cipher and the MAC out of Python: ``bench/sftp.py`` measured pickups at 0.5-0.75x of OpenSSH's
own ``sftp`` with paramiko's SSH and about 0.9x through ``ssh``. ``auto`` takes ``ssh`` for a key login when
it is installed.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import math
import os
import queue
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_DATA, CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_READ, CMD_STATUS, CMD_WRITE, SFTPError, int64

from adapter.config import PostboxSettings
from adapter.errors import TargetError, TargetRefused
from adapter.logs import get_logger

log = get_logger("adapter.postbox")
CHUNK = 1024 * 1024

# Throughput (bench/sftp.py): paramiko's own ``getfo``/``putfo`` reach ~0.83x OpenSSH's sftp on loopback,
# and ``prefetch()`` without a limit asks for a whole file at once, buffering all of it when the consumer
# (hash + disk) is slower than the wire. Transfers here keep ``IN_FLIGHT`` bytes of requests outstanding
# (as OpenSSH's sftp does), so memory stays flat whatever the file size. Python's cost is per request and
# per SSH packet, not per byte, so requests are as large as the server allows (``limits@openssh.com``: 255
# KiB on OpenSSH; 32 KiB, which every server must take, elsewhere), the channel window is 16 MiB instead of
# paramiko's 2 MiB (the server rarely waits for a window adjust; not more: paramiko's receive buffer moves
# what it holds on every read, and 64 MiB measured slower) and our maximum packet 256 KiB (one SSH packet
# per read reply instead of two or more). Reads are hashed and written in a thread of their own (``_Pump``).
REQUEST = 32 * 1024
MAX_REQUEST = 255 * 1024
IN_FLIGHT = 4 * 1024 * 1024
WINDOW = 16 * 1024 * 1024
PACKET = 256 * 1024


def _transport(*args: Any, **kwargs: Any) -> paramiko.Transport:
    """A transport that prefers AES-GCM (one AEAD pass, no separate HMAC over every packet, on our side and
    the server's); paramiko lists it last. Servers without it get paramiko's usual choice."""
    t = paramiko.Transport(*args, **kwargs)
    options = t.get_security_options()
    gcm = tuple(c for c in options.ciphers if c.endswith("-gcm@openssh.com"))
    options.ciphers = gcm + tuple(c for c in options.ciphers if c not in gcm)
    return t


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
        self._sftp: paramiko.SFTPClient | None = None
        self._alive: Callable[[], bool] = lambda: False
        self._close: Callable[[], None] = lambda: None
        self.transport_used = ""  # "paramiko" or "openssh", once connected
        self._delay = 0.0
        self._next_try = 0.0
        self._sizes = (REQUEST, REQUEST)  # read and write request size of the current session

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

    def transport(self) -> str:
        """The transport this postbox uses: ``transport``, or for ``auto`` OpenSSH's ``ssh`` when the login is a
        key alone and ``ssh`` is installed, else paramiko."""
        s = self.settings
        if s.transport != "auto":
            return s.transport
        return "openssh" if self.key_path is not None and not s.password and shutil.which("ssh") else "paramiko"

    def _connect(self) -> paramiko.SFTPClient:
        s = self.settings
        wait = self._next_try - time.monotonic()
        if wait > 0:
            raise PostboxError(f"postbox {self.name}: reconnecting to {s.host}:{s.port} in {wait:.0f} s (backoff)")
        how = self.transport()
        try:
            sftp = self._connect_openssh() if how == "openssh" else self._connect_paramiko()
            self._sizes = request_sizes(sftp)
        except PostboxError:
            self._delay = min(self.settings.reconnect_max, self._delay * 2 or self.settings.reconnect_initial)
            self._next_try = time.monotonic() + self._delay
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        self._sftp, self.transport_used = sftp, how
        self._delay, self._next_try = 0.0, 0.0
        log.info("postbox connected", postbox=self.name, host=s.host, port=s.port, transport=how)
        return sftp

    def _connect_paramiko(self) -> paramiko.SFTPClient:
        s = self.settings
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
                transport_factory=_transport,
            )
            transport = ssh.get_transport()
            assert transport is not None
            sftp = paramiko.SFTPClient.from_transport(transport, window_size=WINDOW, max_packet_size=PACKET)
            if sftp is None:
                raise paramiko.SSHException("no SFTP subsystem")
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
            why = str(exc) or type(exc).__name__
            raise PostboxError(f"postbox {self.name}: cannot connect to {s.host}:{s.port}: {why}") from None

        def alive() -> bool:
            transport = ssh.get_transport()
            return transport is not None and transport.is_active()

        self._alive, self._close = alive, ssh.close
        return sftp

    def _connect_openssh(self) -> paramiko.SFTPClient:
        """``ssh -s sftp`` with nothing of the user's or the system's ssh configuration: the pinned key as the
        only known host (strict), the key file as the only identity, no agent, no prompts."""
        s = self.settings
        program = shutil.which("ssh")
        if program is None:
            raise PostboxRefused(f"postbox {self.name}: transport openssh: no ssh command (install openssh-client)")
        if self.key_path is None:
            raise PostboxRefused(f"postbox {self.name}: transport openssh logs in with key_file only")
        kind, _ = self._pinned()  # an unreadable host_key is refused here, as for paramiko
        _remove_stale_ssh_dirs()
        # 0700: the known_hosts file and ssh's stderr; our pid in the name, so a later process can tell ours
        # (left by a kill -9) from a running one's
        home = Path(tempfile.mkdtemp(prefix=f"{SSH_DIR_PREFIX}{os.getpid()}-"))
        (home / "known_hosts").write_text(f"{self._host_id()} {s.host_key}\n", encoding="ascii")
        errors = (home / "stderr").open("wb")
        alive_every = max(1, math.ceil(s.timeout / 3))
        options = {
            "BatchMode": "yes",
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "StrictHostKeyChecking": "yes",
            "UserKnownHostsFile": str(home / "known_hosts"),
            "GlobalKnownHostsFile": "/dev/null",
            "UpdateHostKeys": "no",
            "CheckHostIP": "no",
            "ConnectTimeout": str(max(1, math.ceil(s.timeout))),
            "ServerAliveInterval": str(alive_every),  # a dead server ends ssh (EOF for us) within the timeout
            "ServerAliveCountMax": "3",
            "Ciphers": "^aes128-gcm@openssh.com,aes256-gcm@openssh.com",  # AES-GCM first, as for paramiko
            "LogLevel": "ERROR",
        }
        argv = [program, "-F", "none", "-T", "-x", "-a", "-p", str(s.port), "-l", s.user, "-i", str(self.key_path)]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        argv += ["-s", "--", s.host, "sftp"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, bufsize=0)
        errors.close()
        pipe = _SshPipe(proc, s.timeout)

        def close() -> None:
            pipe.close()
            shutil.rmtree(home, ignore_errors=True)

        self._alive, self._close = (lambda: proc.poll() is None), close
        try:
            return paramiko.SFTPClient(pipe)  # type: ignore[arg-type]  # a socket-like pipe, as paramiko allows
        except (OSError, EOFError, paramiko.SSHException) as exc:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=s.timeout)
            said = (home / "stderr").read_text(errors="replace").strip().splitlines()
            raise self._openssh_failure(said, exc, kind) from None

    def _openssh_failure(self, said: list[str], exc: BaseException, kind: str) -> Exception:
        """What ssh's own error lines mean for us: refused (host key, login, key file) or transient."""
        s = self.settings
        text = " ".join(said)
        if "Host key verification failed" in text or "HOST IDENTIFICATION HAS CHANGED" in text:
            offered, (_, pinned) = self._offered_key(kind), self._pinned()
            return PostboxRefused(
                f"postbox {self.name}: host {s.host}:{s.port} offered host key {offered}, not the pinned "
                f"{fingerprint(pinned)}; refused (check it with the provider, then set host_key)"
            )
        if "Permission denied" in text or "Too many authentication failures" in text:
            return PostboxRefused(f"postbox {self.name}: login as {s.user} on {s.host}:{s.port} refused: {text}")
        if "Load key" in text or "UNPROTECTED PRIVATE KEY" in text or "no such identity" in text:
            return PostboxRefused(f"postbox {self.name}: key_file {self.key_path}: {said[-1] if said else text}")
        why = said[-1] if said else (str(exc) or type(exc).__name__)
        return PostboxError(f"postbox {self.name}: cannot connect to {s.host}:{s.port}: {why}")

    def _offered_key(self, kind: str) -> str:
        """The fingerprint of the host key the server offers for ``kind`` (a handshake, no login): ssh only says
        that verification failed, the operator needs the key to compare with the provider's."""
        s = self.settings
        try:
            with socket.create_connection((s.host, s.port), timeout=s.timeout) as sock:
                t = _transport(sock)
                options = t.get_security_options()
                # the pinned key's type first (an ssh-rsa key is offered as rsa-sha2-512/256 signatures)
                same = (kind, "rsa-sha2-512", "rsa-sha2-256") if kind == "ssh-rsa" else (kind,)
                preferred = tuple(k for k in options.key_types if k in same)
                options.key_types = preferred + tuple(k for k in options.key_types if k not in preferred)
                try:
                    t.start_client(timeout=s.timeout)
                    return fingerprint(t.get_remote_server_key())
                finally:
                    t.close()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            return f"(unknown: {exc or type(exc).__name__})"

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            if self._alive():
                return self._sftp
            self.close()
        return self._connect()

    def close(self) -> None:
        with self._lock:
            self._close()
            self._sftp = None
            self._alive, self._close = (lambda: False), (lambda: None)

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
        """Stream an inbox file from ``offset`` to ``consume`` in chunks (reads pipelined ahead; never
        whole in memory)."""
        path = self._path(self.settings.inbox, name)
        with self._op(f"read {path}") as sftp:
            size = int(sftp.stat(path).st_size or 0)
            with _Pump(consume) as pump:
                read_pipelined(sftp, path, offset, size, pump.put, self._sizes[0])

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

    # -- the outbox (mirroring) ------------------------------------------------------------------------
    def outbox_path(self, name: str) -> str:
        return self._path(self.settings.outbox, name)

    def stat_outbox(self, name: str) -> RemoteFile | None:
        """A file in the outbox directory, or None when there is none of that name."""
        path = self.outbox_path(name)
        with self._op(f"stat {path}") as sftp:
            try:
                e = sftp.lstat(path)
            except FileNotFoundError:
                return None
        return RemoteFile(
            name, int(e.st_size or 0), int(e.st_mtime or 0), e.st_mode is not None and stat.S_ISREG(e.st_mode)
        )

    def write_outbox(self, name: str, source: BinaryIO, offset: int, size: int) -> None:
        """Write ``source[offset:size]`` into the outbox file ``name`` at ``offset`` (a new file from 0, else
        appended to what is there), pipelined, then ask the server to fsync it."""
        path = self.outbox_path(name)
        with self._op(f"write {path}") as sftp:
            write_pipelined(sftp, path, source, offset, size, self._sizes[1])

    def sha256_outbox(self, name: str, size: int) -> str:
        """The sha256 of the first ``size`` bytes of an outbox file as the server has them: read back.
        (OpenSSH's sftp-server offers no hash extension; ``check-file`` is not implemented by it.)"""
        path = self.outbox_path(name)
        digest = hashlib.sha256()
        with self._op(f"read {path}") as sftp, _Pump(digest.update) as pump:
            read_pipelined(sftp, path, 0, size, pump.put, self._sizes[0])
        return digest.hexdigest()

    def rename_outbox(self, src: str, dst: str) -> None:
        """Rename within the outbox, atomically where the server has posix-rename (OpenSSH does)."""
        a, b = self.outbox_path(src), self.outbox_path(dst)
        with self._op(f"rename {a} to {b}") as sftp:
            try:
                sftp.posix_rename(a, b)
            except OSError as exc:
                if isinstance(exc, (FileNotFoundError, PermissionError)) or exc.errno == errno.EACCES:
                    raise
                sftp.rename(a, b)  # a server without the posix-rename extension

    def remove_outbox(self, name: str) -> None:
        path = self.outbox_path(name)
        with self._op(f"remove {path}") as sftp, suppress(FileNotFoundError):
            sftp.remove(path)


SSH_DIR_PREFIX = "loket-ssh-"


def _remove_stale_ssh_dirs() -> None:
    """Remove the ssh folders of adapter processes that are gone (a ``kill -9`` leaves its folder behind)."""
    for path in Path(tempfile.gettempdir()).glob(f"{SSH_DIR_PREFIX}*-*"):
        pid = path.name.removeprefix(SSH_DIR_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # another user's process, alive


class _SshPipe:
    """The socket-like end of an ``ssh -s sftp`` child that paramiko's ``SFTPClient`` reads and writes (send,
    recv, close; a timeout like a channel's). Pipes of 1 MiB (Linux's ``F_SETPIPE_SZ``): a 255 KiB read reply
    passes in one ``read``."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._w, self._r = proc.stdin.fileno(), proc.stdout.fileno()
        self._timeout = timeout
        for fd in (self._r, self._w):
            with suppress(OSError):  # a smaller pipe only costs more reads
                fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)

    def send(self, data: bytes) -> int:
        return os.write(self._w, data)

    def recv(self, n: int) -> bytes:
        ready, _, _ = select.select([self._r], [], [], self._timeout)
        if not ready:
            raise TimeoutError(f"no answer from the postbox in {self._timeout:g} s")
        return os.read(self._r, n)

    def settimeout(self, timeout: float) -> None:
        self._timeout = timeout

    def get_name(self) -> str:
        return "ssh"

    def close(self) -> None:
        """End ssh: stdin closed is its end of the session; killed if it does not go within 5 s."""
        for stream in (self._proc.stdin, self._proc.stdout):
            with suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# ``sftp`` is typed Any below: these use paramiko's request layer (``_async_request``, ``_read_response``),
# which its own ``SFTPFile`` uses for prefetch and pipelined writes, but which its stubs do not declare.


class _Replies:
    """Takes the replies to our pipelined requests that arrive while we wait for another one."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, Message]] = {}

    def _async_response(self, t: int, msg: Message, num: int) -> None:
        self.got[num] = (t, msg)


class _Pump:
    """Hands read chunks to ``consume`` (sha256, disk) in a thread of its own, behind a queue of ``depth``
    chunks: while paramiko waits for the next reply (the GIL released), the previous chunk is hashed and
    written, instead of one after the other. An error of ``consume`` stops the read and is raised as is."""

    def __init__(self, consume: Callable[[bytes], None], depth: int = 16) -> None:
        self._consume = consume
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="postbox-consume", daemon=True)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._consume(chunk)
                except BaseException as exc:
                    self._error = exc

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def __enter__(self) -> _Pump:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc is None:
            raise self._error


def _reply(sftp: Any, replies: _Replies, num: int) -> tuple[int, Message]:
    """The reply to request ``num``; an error status raises (as paramiko's own calls do)."""
    got = replies.got.pop(num, None)
    if got is None:
        t, msg = sftp._read_response(num)  # converts an error status itself
        assert t is not None and msg is not None
        return t, msg
    if got[0] == CMD_STATUS:
        sftp._convert_status(got[1])
    return got


def request_sizes(sftp: Any) -> tuple[int, int]:
    """(read, write) request sizes for this server: what ``limits@openssh.com`` allows, at most
    ``MAX_REQUEST``; ``REQUEST`` (32 KiB, the size every SFTP server must accept) without the extension."""
    try:
        t, msg = sftp._request(CMD_EXTENDED, "limits@openssh.com")
    except (OSError, SFTPError, EOFError):
        return REQUEST, REQUEST
    if t != CMD_EXTENDED_REPLY:
        return REQUEST, REQUEST
    msg.get_int64()  # max packet length
    read, write = msg.get_int64(), msg.get_int64()
    return (min(read, MAX_REQUEST) if read else REQUEST), (min(write, MAX_REQUEST) if write else REQUEST)


def _depth(request: int) -> int:
    return max(8, min(128, IN_FLIGHT // request))


def read_pipelined(
    sftp: Any, path: str, offset: int, size: int, consume: Callable[[bytes], None], request: int = REQUEST
) -> None:
    """Read ``path`` from ``offset`` to ``size`` into ``consume``, in order, ``IN_FLIGHT`` bytes requested ahead.
    A short read is completed before anything after it is consumed; end of file before ``size`` raises
    ``EOFError`` (the file shrank)."""
    if offset >= size:
        return
    with sftp.open(path, "rb") as remote:
        handle = remote.handle
        replies = _Replies()
        depth = _depth(request)
        pending: deque[tuple[int, int, int]] = deque()
        ahead = offset
        while pending or ahead < size:
            while len(pending) < depth and ahead < size:
                n = min(request, size - ahead)
                pending.append((sftp._async_request(replies, CMD_READ, handle, int64(ahead), n), ahead, n))
                ahead += n
            num, at, n = pending.popleft()
            while True:
                t, msg = _reply(sftp, replies, num)
                if t != CMD_DATA:
                    raise SFTPError("Expected data")
                data = msg.get_string()
                if not data:
                    raise EOFError(f"{path}: end of file at {at}, expected {size} bytes")
                consume(data)
                if len(data) == n:
                    break
                at, n = at + len(data), n - len(data)  # short read: the rest of this piece first
                num = sftp._async_request(replies, CMD_READ, handle, int64(at), n)


def write_pipelined(sftp: Any, path: str, source: BinaryIO, offset: int, size: int, request: int = REQUEST) -> None:
    """Write ``source`` bytes ``offset..size`` to ``path`` at the same offsets, ``IN_FLIGHT`` bytes in flight;
    a new file (truncated) when ``offset`` is 0. Every write's status is checked; then fsync@openssh.com."""
    with sftp.open(path, "r+b" if offset else "wb") as remote:
        handle = remote.handle
        replies = _Replies()
        depth = _depth(request)
        pending: deque[int] = deque()
        source.seek(offset)
        pos = offset
        while pos < size:
            block = source.read(min(CHUNK, size - pos))
            if not block:
                raise EOFError(f"local file ended at {pos}, expected {size} bytes")
            for i in range(0, len(block), request):
                piece = block[i : i + request]
                pending.append(sftp._async_request(replies, CMD_WRITE, handle, int64(pos), piece))
                pos += len(piece)
                if len(pending) >= depth:
                    _reply(sftp, replies, pending.popleft())
        while pending:
            _reply(sftp, replies, pending.popleft())
        try:
            sftp._request(CMD_EXTENDED, "fsync@openssh.com", handle)
        except OSError as exc:
            if "unsupported" not in str(exc).lower():
                raise
