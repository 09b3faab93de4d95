"""A real OpenSSH sshd serving SFTP on 127.0.0.1 for the postbus tests (../shared/docs/test-infrastructure.md):
its own sshd_config and host key, a chrooted test user (chroot under /srv, never /tmp) with key login. The
system's sshd is never touched; teardown stops ours by its pid, removes the user and both directories.

Needs root and /usr/sbin/sshd (``.ci/run`` installs openssh-server): without them the tests skip, saying
why, except under CI=true, where they fail."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

SSHD = Path("/usr/sbin/sshd")


def require_sshd() -> None:
    missing = None
    if os.geteuid() != 0:
        missing = "needs root (a chrooted test user for sshd)"
    elif not SSHD.exists() or shutil.which("ssh-keygen") is None:
        missing = "needs openssh-server (/usr/sbin/sshd; .ci/run installs it)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"sftp tests: {missing}")
        pytest.skip(missing)


@dataclass
class SftpServer:
    host: str
    port: int
    user: str
    chroot: Path  # what the user sees as /
    client_key: Path
    host_key_line: str  # "ssh-ed25519 AAAA…"
    host_fingerprint: str  # "SHA256:…"
    workdir: Path

    @property
    def inbox(self) -> Path:
        return self.chroot / "inbox"

    @property
    def processed(self) -> Path:
        return self.chroot / "processed"

    def put(self, name: str, data: bytes, mode: int = 0o644) -> Path:
        """Place a file in the inbox as the loket would (owned by the postbus user)."""
        path = self.inbox / name
        tmp = self.workdir / "upload.tmp"
        tmp.write_bytes(data)
        shutil.move(str(tmp), path)  # into the inbox whole, like an upload's final rename
        uid = pwd.getpwnam(self.user).pw_uid
        os.chown(path, uid, uid)
        path.chmod(mode)
        return path

    def toml(self, name: str = "olo", host_key: str | None = None, **extra: object) -> str:
        lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in extra.items())
        return f"""
[postboxes.{name}]
host = "{self.host}"
port = {self.port}
user = "{self.user}"
key_file = "{self.client_key}"
host_key = "{host_key or self.host_key_line}"
inbox = "/inbox"
processed = "/processed"
timeout = 10
reconnect_initial = 0.05
reconnect_max = 0.2
{lines}"""


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def serve(password: str | None = None) -> Iterator[SftpServer]:
    """Start sshd (a generator for a fixture: yields the server, then tears everything down). With
    ``password`` the test user may also log in with that password (``PasswordAuthentication yes``)."""
    require_sshd()
    work = Path(tempfile.mkdtemp(prefix="sftpd.", dir="/tmp"))
    Path("/srv").mkdir(exist_ok=True)
    chroot = Path(tempfile.mkdtemp(prefix="sftpchroot.", dir="/srv"))
    user = f"lasftp{os.getpid() % 1_000_000}"
    proc: subprocess.Popen[bytes] | None = None
    created_user = False
    try:
        work.chmod(0o755)
        chroot.chmod(0o755)
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/usr/sbin/nologin", user],
            check=True,
        )
        created_user = True
        hashed = "*"  # locked ('!') refuses even key login
        if password is not None:
            hashed = subprocess.run(
                ["openssl", "passwd", "-6", "-stdin"], input=password, check=True, capture_output=True, text=True
            ).stdout.strip()
        subprocess.run(["usermod", "-p", hashed, user], check=True)
        uid = pwd.getpwnam(user).pw_uid
        for d in ("inbox", "processed"):
            (chroot / d).mkdir()
            os.chown(chroot / d, uid, uid)
        Path("/run/sshd").mkdir(exist_ok=True)
        _keygen(work / "host")
        _keygen(work / "client")
        keys = work / "keys"
        keys.mkdir()
        shutil.copy(work / "client.pub", keys / user)
        keys.chmod(0o755)
        (keys / user).chmod(0o644)
        port = free_port()
        config = work / "sshd_config"
        config.write_text(
            f"""Port {port}
ListenAddress 127.0.0.1
HostKey {work / "host"}
PidFile {work / "sshd.pid"}
AuthorizedKeysFile {keys}/%u
StrictModes no
UsePAM no
PasswordAuthentication {"no" if password is None else "yes"}
KbdInteractiveAuthentication no
AllowUsers {user}
Subsystem sftp internal-sftp
Match User {user}
    ChrootDirectory {chroot}
    ForceCommand internal-sftp
"""
        )
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True)
        log = open(work / "log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("sshd did not start: " + (work / "log").read_text()) from None
                time.sleep(0.05)
        pub = (work / "host.pub").read_text().split()
        fp = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(work / "host.pub")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[1]
        yield SftpServer("127.0.0.1", port, user, chroot, work / "client", f"{pub[0]} {pub[1]}", fp, work)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if created_user:
            subprocess.run(["userdel", user], check=False)
        shutil.rmtree(chroot, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
