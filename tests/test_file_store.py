"""The content-addressed file store: verified atomic renames, nothing left behind on a mismatch, resume."""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from adapter.store.files import ContentMismatch, FileBusy, FileStore, StoreError

# Incompressible but the same in every process: test ids (which name SHA) must be reproducible, since a
# mutation run or `pytest --lf` selects tests by id in another process.
DATA = random.Random(3).randbytes(3 * 1024 * 1024 + 17)
SHA = hashlib.sha256(DATA).hexdigest()


def chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def test_path_is_content_addressed(store: FileStore) -> None:
    assert store.path_for(SHA) == store.root / SHA[:2] / SHA
    assert store.path_for(SHA.upper()) == store.path_for(SHA)
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


def test_write_and_commit(store: FileStore) -> None:
    assert not store.has(SHA)
    with store.writer(SHA, len(DATA)) as w:
        for c in chunks(DATA):
            w.write(c)
        path = w.commit()
    assert path == store.path_for(SHA)
    assert path.read_bytes() == DATA
    assert store.has(SHA) and store.has(SHA, len(DATA))
    assert not store.has(SHA, len(DATA) + 1)
    assert leftovers(store.root) == [f"{SHA[:2]}/{SHA}"]


def test_unknown_sha_is_named_by_its_content(store: FileStore) -> None:
    with store.writer(None, None) as w:
        w.write(b"hallo")
        path = w.commit()
    assert path.name == hashlib.sha256(b"hallo").hexdigest()
    assert leftovers(store.root) == [f"{path.name[:2]}/{path.name}"]


def test_anonymous_write_without_commit_leaves_nothing(store: FileStore) -> None:
    with store.writer(None, None) as w:
        w.write(b"half")
    assert leftovers(store.root) == []


@pytest.mark.parametrize(
    ("sha", "size", "data", "reason"),
    [
        (SHA, len(DATA), DATA[:-1], "size"),
        (SHA, len(DATA), DATA[:-1] + b"X", "sha256"),
        (SHA, len(DATA) - 1, DATA, "more bytes"),
        ("0" * 64, None, DATA, "sha256"),
        (None, 3, b"abcd", "more bytes"),
    ],
    ids=["one-byte-short", "last-byte-wrong", "one-byte-too-many", "other-sha256", "no-sha256-too-long"],
)
def test_mismatch_leaves_nothing_behind(
    store: FileStore, sha: str | None, size: int | None, data: bytes, reason: str
) -> None:
    with pytest.raises(ContentMismatch, match=reason), store.writer(sha, size) as w:
        for c in chunks(data):
            w.write(c)
        w.commit()
    assert leftovers(store.root) == []
    assert not store.has(SHA)


def test_rename_is_atomic_no_final_file_before_commit(store: FileStore) -> None:
    w = store.writer(SHA, len(DATA))
    w.write(DATA[:1000])
    assert not store.path_for(SHA).exists()
    assert not store.has(SHA)
    assert store.part_path(SHA).exists()
    w.write(DATA[1000:])
    inode = os.stat(store.part_path(SHA)).st_ino
    path = w.commit()
    assert os.stat(path).st_ino == inode  # renamed, not copied
    assert not store.part_path(SHA).exists()


@pytest.mark.parametrize("cut", [1, 1024 * 1024 + 5, len(DATA)], ids=["one-byte", "a-megabyte-and-more", "all-bytes"])
def test_resume_a_part(store: FileStore, cut: int) -> None:
    """A broken download continues where it stopped, however little or much it had: with every byte (a crash
    between the last byte and the rename) nothing is left to fetch."""
    with store.writer(SHA, len(DATA)) as w:
        w.write(DATA[:cut])
        # leaves the block without commit (a broken download): the part stays
    assert store.partial_size(SHA) == cut
    with store.writer(SHA, len(DATA)) as w:
        assert w.offset == cut
        for c in chunks(DATA[cut:]):
            w.write(c)
        path = w.commit()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    assert leftovers(store.root) == [f"{SHA[:2]}/{SHA}"]


def test_resuming_rehashes_the_part_in_chunks(store: FileStore) -> None:
    """Parts may be gigabytes: the re-hash of a resume reads them a chunk (1 MiB) at a time."""
    key = "cd" * 8
    with store.writer(None, None, resume_key=key) as w:
        for _ in range(8):
            w.write(bytes(1024 * 1024))
    tracemalloc.start()
    try:
        with store.writer(None, None, resume_key=key) as w:
            assert w.offset == 8 * 1024 * 1024
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 1024 * 1024, peak


def test_resume_of_a_corrupt_part_is_caught_at_commit(store: FileStore) -> None:
    part = store.part_path(SHA)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)
    with pytest.raises(ContentMismatch, match="sha256"), store.writer(SHA, len(DATA)) as w:
        assert w.offset == 1000
        w.write(DATA[1000:])
        w.commit()
    assert leftovers(store.root) == []


def test_part_longer_than_expected_starts_over(store: FileStore) -> None:
    part = store.part_path(SHA)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * (len(DATA) + 10))
    with store.writer(SHA, len(DATA)) as w:
        assert w.offset == 0
        w.write(DATA)
        w.commit()
    assert store.has(SHA, len(DATA))


def test_no_resume_truncates(store: FileStore) -> None:
    with store.writer(SHA, len(DATA)) as w:
        w.write(DATA[:10])
    with store.writer(SHA, len(DATA), resume=False) as w:
        assert w.offset == 0
        w.write(DATA)
        w.commit()
    assert store.has(SHA, len(DATA))


def test_discard_partial(store: FileStore) -> None:
    with store.writer(SHA, len(DATA)) as w:
        w.write(DATA[:10])
    store.discard_partial(SHA)
    assert store.partial_size(SHA) == 0
    assert leftovers(store.root) == []


def test_second_writer_for_the_same_sha_is_refused(store: FileStore) -> None:
    with store.writer(SHA, len(DATA)) as w:
        w.write(DATA[:10])
        with pytest.raises(FileBusy, match=f"{SHA}.part: another writer is busy with this file"):
            store.writer(SHA, len(DATA))
    with store.writer(SHA, len(DATA)) as w2:
        assert w2.offset == 10


def test_folders_and_files_are_the_services_alone_whatever_the_umask(tmp_path: Path) -> None:
    """Documents carry personal data: folders 0700, files 0600, also under umask 000; a root that others
    could read (made by hand, or by an older install) is tightened."""
    root = tmp_path / "files"
    old = os.umask(0)
    try:
        root.mkdir(mode=0o755)
        store = FileStore(root)
        with store.writer(SHA, len(DATA)) as w:  # a part left behind in its own folder
            w.write(DATA[:10])
        with store.writer(None, None, resume_key="ab" * 8) as w:  # a keyed part, in the root
            w.write(b"x")
        with store.writer(None, None) as w:  # anonymous: commit makes the final folder
            w.write(b"hallo")
            made = w.commit()
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in [root, *root.rglob("*")]}
    assert modes == {
        "files": "0o700",
        f"files/{SHA[:2]}": "0o700",
        f"files/{SHA[:2]}/{SHA}.part": "0o600",
        f"files/.resume-{'ab' * 8}.part": "0o600",
        f"files/{made.parent.name}": "0o700",
        f"files/{made.parent.name}/{made.name}": "0o600",
    }


def test_an_empty_file_is_stored(store: FileStore) -> None:
    """An empty bijlage is still a document of the verzoek."""
    empty = hashlib.sha256(b"").hexdigest()
    with store.writer(empty, 0) as w:
        assert w.offset == 0
        path = w.commit()
    assert path.read_bytes() == b"" and store.has(empty, 0)


def test_refusals_say_what_is_wrong(store: FileStore) -> None:
    with pytest.raises(ValueError, match="negative size: -1"):
        store.writer(SHA, -1)
    with pytest.raises(ValueError, match="not a hex resume key: 'zz'"):
        store.resume_part("zz")
    with pytest.raises(ValueError, match=r"not a sha256 hex digest: '\.\./x'"):
        store.path_for("../x")
    with store.writer(None, 3) as w, pytest.raises(ContentMismatch, match="at least 4, expected 3"):
        w.write(b"ab")
        w.write(b"cd")


def test_a_closed_writer_refuses_more_bytes(store: FileStore) -> None:
    w = store.writer(SHA, len(DATA))
    w.write(DATA[:5])
    w.close()
    with pytest.raises(StoreError, match=f"{SHA}.part: writer already closed"):
        w.write(b"x")


def test_commit_and_discard_may_be_called_again(store: FileStore) -> None:
    with store.writer(SHA, len(DATA)) as w:
        w.write(DATA)
        first = w.commit()
        assert w.commit() == first
    broken = store.writer(SHA, len(DATA) + 1)
    broken.write(b"x")
    broken.discard()
    broken.discard()  # e.g. the caller's cleanup after a mismatch that discarded already
    assert leftovers(store.root) == [f"{SHA[:2]}/{SHA}"]


def test_close_after_a_failing_flush_keeps_the_part_and_frees_the_lock(store: FileStore) -> None:
    """close() runs in ``__exit__`` while a broken download's error propagates: a full disk failing the flush
    must not replace that error, and the lock must be released for the next attempt."""
    w = store.writer(SHA, len(DATA))
    w.write(DATA[:5])
    real = w._file

    class DiskFull:
        closed = property(lambda self: real.closed)

        def flush(self) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            real.close()

    w._file = DiskFull()  # type: ignore[assignment]
    w.close()
    with store.writer(SHA, len(DATA)) as again:
        assert again.offset == 5
