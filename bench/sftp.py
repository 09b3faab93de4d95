"""Benchmark (not a test): postbus pickup and mirror upload against OpenSSH's own ``sftp`` on one file.

A real OpenSSH sshd on 127.0.0.1 (``tests/sftp_server.py``: its own config, a chrooted user under /srv; needs
root and openssh-server), one file of ``--size`` random bytes. Per round, in alternating order:

- ``sftp get`` of the file (OpenSSH client, batch mode) into a local file, against the adapter's **pickup**
  (``adapter.postbox.pickup._download`` in a fresh process: stat, pipelined read, sha256 and fsync into the
  file store, stat again);
- ``sftp put`` of the file into the outbox, against the adapter's **mirror upload**
  (``adapter.postbox.mirror.upload`` in a fresh process: pipelined write under a temporary name + server
  fsync, stat, sha256 read back from the server, rename). The mirror's read-back has no counterpart in
  ``sftp put``, so the upload phase alone is reported too.

Each adapter run is its own process, so its peak RSS (``ru_maxrss``) is the adapter side's alone. Ratios are
OpenSSH time / adapter time (1.0 = as fast as OpenSSH); the medians over the rounds are printed last.

    .venv/bin/python bench/sftp.py                  # 1 GB, 3 rounds
    .venv/bin/python bench/sftp.py --size 256MB --rounds 5
    .venv/bin/python bench/sftp.py --transport paramiko   # paramiko's own SSH under the SFTP session
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RSS_LIMIT_MB = 100
NAME = "1234567_bench.bin"


def parse_size(text: str) -> int:
    import re

    m = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    unit = (m[2] or "").upper().rstrip("B")
    return int(m[1]) * {"": 1, "K": 1000, "KI": 1024, "M": 10**6, "MI": 2**20, "G": 10**9, "GI": 2**30}[unit]


# -- children: the adapter side, one process per run ---------------------------------------------------------


def _postbox(settings_json: str) -> Any:
    from adapter.config import PostboxSettings
    from adapter.postbox.client import Postbox

    s = json.loads(settings_json)
    return Postbox("bench", PostboxSettings.model_validate(s["postbox"]), Path(s["key"]))


def pickup(settings_json: str, store_dir: str) -> None:
    from adapter.postbox.pickup import _download
    from adapter.store.files import FileStore

    pb = _postbox(settings_json)
    files = FileStore(Path(store_dir))
    rf = next(f for f in pb.list_inbox() if f.name == NAME)  # connects (not timed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    sha, size = _download(pb, rf, files)
    seconds = time.perf_counter() - t0
    pb.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "sha256": sha, "bytes": size, "rss_mb": rss, "rss_before": before}))


def mirror(settings_json: str, store_dir: str, db: str, sha: str, size: str) -> None:
    from datetime import UTC, datetime

    from adapter.postbox.client import Postbox
    from adapter.postbox.mirror import upload
    from adapter.store.files import FileStore
    from adapter.store.uploads import Upload

    pb = _postbox(settings_json)
    phases = {"write": 0.0, "verify": 0.0}

    class Timed(Postbox):
        def write_outbox(self, *a: Any, **k: Any) -> None:
            t = time.perf_counter()
            super().write_outbox(*a, **k)
            phases["write"] += time.perf_counter() - t

        def sha256_outbox(self, *a: Any, **k: Any) -> str:
            t = time.perf_counter()
            try:
                return super().sha256_outbox(*a, **k)
            finally:
                phases["verify"] += time.perf_counter() - t

    pb.__class__ = Timed
    files = FileStore(Path(store_dir))
    u = Upload(
        1, "bench", "bench", "file", None, None, NAME, sha, int(size), "pending", 0, None, datetime.now(UTC), None
    )

    import adapter.store.uploads as uploads

    uploads.mark = lambda *a, **k: None  # upload() records "uploading"; the bench has no database
    pb.stat_outbox(".")  # connects (not timed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    how = upload(pb, u, files, None)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    pb.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "how": how, "rss_mb": rss, "rss_before": before, **phases}))


# -- parent -------------------------------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=10**9, help="file size (e.g. 1GB, 256MiB; default 1GB)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--transport",
        choices=["auto", "openssh", "paramiko"],
        default="auto",
        help="the postbox's SSH transport ([postboxes.NAME] transport; auto: openssh for a key login)",
    )
    args = ap.parse_args()
    size: int = args.size

    from tests.sftp_server import serve

    print(
        f"# sftp bench: {size:,} bytes, {args.rounds} rounds, transport {args.transport}, "
        f"python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    gen = serve()
    srv = next(gen)
    try:
        uid = pwd.getpwnam(srv.user).pw_uid
        (srv.chroot / "outbox").mkdir()
        os.chown(srv.chroot / "outbox", uid, uid)
        work = Path(tempfile.mkdtemp(prefix="bench-sftp-", dir="/var/tmp"))
        src = work / "source.bin"
        with src.open("wb") as f:
            left = size
            while left:
                n = min(left, 8 << 20)
                f.write(os.urandom(n))
                left -= n
        sha = _sha256(src)
        subprocess.run(["cp", str(src), str(srv.inbox / NAME)], check=True)
        known = work / "known_hosts"
        known.write_text(f"[{srv.host}]:{srv.port} {srv.host_key_line}\n")
        sftp = [
            "sftp",
            "-q",
            "-b",
            "-",
            "-i",
            str(srv.client_key),
            "-P",
            str(srv.port),
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "BatchMode=yes",
            f"{srv.user}@{srv.host}",
        ]

        def openssh(command: str) -> float:
            t0 = time.perf_counter()
            subprocess.run(sftp, input=command.encode(), check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t0

        # the adapter's runs are timed after their login (a postbox session is reused between runs), so
        # OpenSSH's time for starting, the handshake and the login is taken off its transfers
        login = statistics.median(openssh("pwd\n") for _ in range(5))
        print(f"# OpenSSH sftp start + login: {login * 1000:.0f} ms (subtracted from its get and put)")

        settings = json.dumps(
            {
                "postbox": {
                    "host": srv.host,
                    "port": srv.port,
                    "user": srv.user,
                    "key_file": str(srv.client_key),
                    "host_key": srv.host_key_line,
                    "inbox": "/inbox",
                    "outbox": "/outbox",
                    "timeout": 60,
                    "transport": args.transport,
                },
                "key": str(srv.client_key),
            }
        )
        store = work / "files"
        mirror_store = work / "mirror-files"
        (mirror_store / sha[:2]).mkdir(parents=True)
        os.link(src, mirror_store / sha[:2] / sha)  # the document the mirror uploads, in its file store

        results: list[dict[str, float]] = []
        for r in range(args.rounds):
            row: dict[str, float] = {}
            order = ("openssh", "adapter") if r % 2 == 0 else ("adapter", "openssh")
            for who in order:  # download
                if who == "openssh":
                    row["get"] = openssh(f"get /inbox/{NAME} {work / 'got.bin'}\n") - login
                    (work / "got.bin").unlink()
                else:
                    got = _child("pickup", settings, str(store))
                    assert got["sha256"] == sha and got["bytes"] == size, got
                    row["pickup"], row["pickup_rss"], row["pickup_base"] = (
                        got["seconds"],
                        got["rss_mb"],
                        got["rss_before"],
                    )
                    for p in store.rglob("*"):
                        if p.is_file():
                            p.unlink()
            for who in order:  # upload
                if who == "openssh":
                    row["put"] = openssh(f"put {src} /outbox/openssh.bin\n") - login
                    (srv.chroot / "outbox" / "openssh.bin").unlink()
                else:
                    up = _child("mirror", settings, str(mirror_store), "-", sha, str(size))
                    out = srv.chroot / "outbox" / NAME
                    assert out.stat().st_size == size, up
                    out.unlink()
                    row["mirror"], row["mirror_rss"], row["mirror_base"] = up["seconds"], up["rss_mb"], up["rss_before"]
                    row["mirror_write"], row["mirror_verify"] = up["write"], up["verify"]
            results.append(row)
            mb = size / 1e6
            print(
                f"round {r + 1}: sftp get {mb / row['get']:.0f} MB/s, pickup {mb / row['pickup']:.0f} MB/s "
                f"({row['get'] / row['pickup']:.2f}x, RSS {row['pickup_base']:.0f} -> {row['pickup_rss']:.0f} MB) | "
                f"sftp put {mb / row['put']:.0f} MB/s, mirror upload phase {mb / row['mirror_write']:.0f} MB/s "
                f"({row['put'] / row['mirror_write']:.2f}x), with read-back check {mb / row['mirror']:.0f} MB/s "
                f"({row['put'] / row['mirror']:.2f}x, RSS {row['mirror_base']:.0f} -> {row['mirror_rss']:.0f} MB)",
                flush=True,
            )
        med = {k: statistics.median(row[k] for row in results) for k in results[0]}
        rss = max(max(row["pickup_rss"], row["mirror_rss"]) for row in results)
        grew = max(
            max(row["pickup_rss"] - row["pickup_base"], row["mirror_rss"] - row["mirror_base"]) for row in results
        )
        print()
        # each round's two runs share the machine's load at that moment: the ratio is taken per round
        print("| direction | OpenSSH sftp (median) | adapter (median) | ratio per round | median ratio |")
        print("|---|---:|---:|---|---:|")
        for what, theirs, ours in (
            ("download: sftp get / pickup", "get", "pickup"),
            ("upload: sftp put / mirror, upload phase", "put", "mirror_write"),
            ("upload: sftp put / mirror with read-back sha256", "put", "mirror"),
        ):
            ratios = [row[theirs] / row[ours] for row in results]
            print(
                f"| {what} | {size / med[theirs] / 1e6:.0f} MB/s | {size / med[ours] / 1e6:.0f} MB/s | "
                f"{', '.join(f'{r:.2f}' for r in ratios)} | {statistics.median(ratios):.2f}x |"
            )
        print(
            f"- peak RSS of the adapter side: {rss:.0f} MB (limit {RSS_LIMIT_MB} MB): "
            f"{'OK' if rss < RSS_LIMIT_MB else 'OVER'}; the transfer itself added at most {grew:.0f} MB "
            "(the rest: Python, the imports and the SSH session before it started)"
        )
    finally:
        for _ in gen:
            pass
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("pickup", "mirror"):
        {"pickup": pickup, "mirror": mirror}[sys.argv[1]](*sys.argv[2:])  # type: ignore[operator]
    else:
        main()
