"""Content-addressed file store for documents fetched from the loket (werkmap), which may be several GB.

A file lives at ``root/ab/abcdef…`` (its sha256). It only gets there by an atomic rename after its
sha256 and size were checked while it was written, so *existing under its name* is the proof that the
content is right: ``has`` never rehashes. A download that breaks off leaves ``root/ab/<sha>.part``; the
next writer for the same sha256 re-hashes that part once (hash state cannot be saved) and continues
where it stopped. Nothing is ever read whole into memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import uuid
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024
_RESUME_KEY = re.compile(r"^[0-9a-f]{16,64}$")


class StoreError(Exception):
    """Something went wrong storing a file (``str()`` is one line)."""


class ContentMismatch(StoreError):
    """The written bytes are not what was expected (size or sha256); the temp file is gone."""


class FileBusy(StoreError):
    """Another writer (thread or process) is writing the same sha256 right now."""


def _check_sha(sha256: str) -> str:
    sha = sha256.lower()
    if not _SHA256.match(sha):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Files by sha256 under ``root``; safe against crashes (atomic rename) and concurrent writers (flock)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # documents carry personal data
        if self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)

    def path_for(self, sha256: str) -> Path:
        """Where the file with this sha256 lives (whether or not it is there yet)."""
        sha = _check_sha(sha256)
        return self.root / sha[:2] / sha

    def part_path(self, sha256: str) -> Path:
        """The partial download of this sha256 (what a resumed writer continues)."""
        path = self.path_for(sha256)
        return path.with_name(path.name + ".part")

    def has(self, sha256: str, size: int | None = None) -> bool:
        """The file is complete: it exists under its name (only a verified rename puts it there) with ``size``."""
        try:
            st = self.path_for(sha256).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def partial_size(self, sha256: str) -> int:
        """Bytes of a partial download already on disk (0 when none)."""
        try:
            return self.part_path(sha256).stat().st_size
        except FileNotFoundError:
            return 0

    def discard_partial(self, sha256: str) -> None:
        """Forget a partial download (e.g. after the server sent corrupt bytes)."""
        self.part_path(sha256).unlink(missing_ok=True)

    def writer(
        self,
        expected_sha256: str | None,
        expected_size: int | None,
        *,
        resume: bool = True,
        resume_key: str | None = None,
    ) -> FileWriter:
        """A writer for one file. With a known sha256 it writes ``<sha>.part`` and, if ``resume``, continues
        an existing part (see ``FileWriter.offset``); without one it writes a private temp file, or, with a
        ``resume_key`` (hex, naming the source: e.g. a remote file and its size and mtime), a part of that name
        that a later writer with the same key continues."""
        return FileWriter(self, expected_sha256, expected_size, resume=resume, resume_key=resume_key)

    def resume_part(self, resume_key: str) -> Path:
        """The partial file of a keyed writer without a known sha256 (see ``writer``)."""
        if not _RESUME_KEY.match(resume_key):
            raise ValueError(f"not a hex resume key: {resume_key!r}")
        return self.root / f".resume-{resume_key}.part"


class FileWriter:
    """Hashes while writing into a temp file next to the final place; ``commit`` verifies and renames.

    Use as a context manager. Leaving it without ``commit`` keeps a ``<sha>.part`` (or a keyed
    ``.resume-<key>.part``) for a later resume (after a broken connection, say) and removes an anonymous
    temp file; a mismatch removes the part.
    """

    def __init__(
        self,
        store: FileStore,
        expected_sha256: str | None,
        expected_size: int | None,
        *,
        resume: bool = True,
        resume_key: str | None = None,
    ) -> None:
        if expected_size is not None and expected_size < 0:
            raise ValueError(f"negative size: {expected_size}")
        self.store = store
        self.expected_sha256 = _check_sha(expected_sha256) if expected_sha256 else None
        self.expected_size = expected_size
        self._hash = hashlib.sha256()
        self._committed: Path | None = None
        self.resume_key = resume_key
        if self.expected_sha256:
            self.tmp_path = store.part_path(self.expected_sha256)
        elif resume_key is not None:
            self.tmp_path = store.resume_part(resume_key)
        else:
            self.tmp_path = store.root / f".tmp-{uuid.uuid4().hex}.part"
        self.tmp_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.tmp_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)  # the service's alone
        self._file: BinaryIO = open(fd, "a+b")  # noqa: SIM115 - closed by commit/close
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise FileBusy(f"{self.tmp_path.name}: another writer is busy with this file") from None
        self.offset = self._resume() if resume else self._truncate()

    # -- resume -----------------------------------------------------------------------------------------

    def _truncate(self) -> int:
        self._file.truncate(0)
        self._file.seek(0)
        return 0

    def _resume(self) -> int:
        """Re-hash what an earlier writer left, once, streaming; a part longer than expected is useless."""
        size = os.fstat(self._file.fileno()).st_size
        if size == 0 or (self.expected_size is not None and size > self.expected_size):
            return self._truncate()
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            self._hash.update(chunk)
        self._file.seek(0, os.SEEK_END)
        return size

    # -- writing ----------------------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Bytes in the temp file so far (resumed part included)."""
        return self.offset

    def write(self, chunk: bytes) -> None:
        """Append a chunk; more bytes than the expected size is a mismatch right away."""
        if self._committed is not None or self._file.closed:
            raise StoreError(f"{self.tmp_path.name}: writer already closed")
        if self.expected_size is not None and self.offset + len(chunk) > self.expected_size:
            got = self.offset + len(chunk)
            self.discard()
            raise ContentMismatch(f"more bytes than expected: at least {got}, expected {self.expected_size}")
        self._file.write(chunk)
        self._hash.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """Start over from byte 0 (e.g. the server ignored a Range request and sends the whole file)."""
        self._truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def commit(self) -> Path:
        """Verify size and sha256, fsync, rename atomically into place; return the final path."""
        if self._committed is not None:
            return self._committed
        self._file.flush()
        digest = self._hash.hexdigest()
        problem = None
        if self.expected_size is not None and self.offset != self.expected_size:
            problem = f"size {self.offset} is not the expected {self.expected_size}"
        elif self.expected_sha256 is not None and digest != self.expected_sha256:
            problem = f"sha256 {digest} is not the expected {self.expected_sha256}"
        if problem:
            self.discard()
            raise ContentMismatch(problem)
        os.fsync(self._file.fileno())  # only now: no point flushing GBs of a mismatch to disk
        final = self.store.path_for(digest)
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(self.tmp_path, final)  # same filesystem: atomic; an existing equal file is simply replaced
        _fsync_dir(final.parent)
        self._close()
        self._committed = final
        return final

    def discard(self) -> None:
        """Remove the temp file (nothing of this write stays behind)."""
        with contextlib.suppress(FileNotFoundError):
            self.tmp_path.unlink()
        self._close()

    def close(self) -> None:
        """Stop without committing: keep a resumable ``<sha>.part``, drop an anonymous temp file."""
        if self._committed is not None or self._file.closed:
            return
        if self.expected_sha256 is None and self.resume_key is None:
            self.discard()
            return
        with contextlib.suppress(OSError):
            self._file.flush()
        self._close()

    def _close(self) -> None:
        if not self._file.closed:
            self._file.close()  # also releases the flock

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
