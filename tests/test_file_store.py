"""The content-addressed file store: verified atomic renames, nothing left behind on a mismatch, resume."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from adapter.store.files import ContentMismatch, FileBusy, FileStore

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


def test_resume_a_part(store: FileStore) -> None:
    cut = 1024 * 1024 + 5
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
        with pytest.raises(FileBusy):
            store.writer(SHA, len(DATA))
    with store.writer(SHA, len(DATA)) as w2:
        assert w2.offset == 10
