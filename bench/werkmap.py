"""Benchmark (not a test): download one big werkmap document through ``WerkmapClient.download``.

Three processes, so memory and CPU figures are honest: the fake werkmap serves (``serve``), a fresh
process downloads into a temporary FileStore (``download``) and reports its peak RSS, and this process
orchestrates. Baselines on the same document: ``curl -o /dev/null`` and a raw httpx stream to nowhere
(no hashing, no disk). A second run injects one corrupt transfer and shows it is detected and refetched.

    .venv/bin/python bench/werkmap.py               # 2 GiB
    .venv/bin/python bench/werkmap.py --size 200MiB
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OIN = "00000001002564440000"
RSS_LIMIT_MB = 150
CONTROL = "/_bench"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    unit = (m[2] or "").upper().rstrip("B")
    factor = {"": 1, "K": 1000, "KI": 1024, "M": 10**6, "MI": 2**20, "G": 10**9, "GI": 2**30}[unit]
    return int(m[1]) * factor


# -- child: the fake werkmap ----------------------------------------------------------------------------------


def serve(size: int) -> None:
    """Serve a FakeWerkmap with one verzoek holding one document of ``size`` bytes; ``/_bench/*`` controls it."""
    from starlette.responses import JSONResponse

    from adapter.loket import stam
    from adapter.simulation.fake_werkmap import FakeWerkmap
    from adapter.simulation.fake_zgw.server import serve_in_thread

    fake = FakeWerkmap(oin=OIN)
    nr = fake.generate_verzoeken(1, documents_per_verzoek=1, document_size=size)[0]
    doc_id = f"DOC-{nr}-1"
    sha = fake.document_sha256(doc_id)  # computed once here, not during the measured runs

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CONTROL):
            if scope["path"] == f"{CONTROL}/corrupt":
                fake.fail_next(stam.document(doc_id), corrupt=True)
            gets = sum(1 for r in fake.requests if r.path.endswith(stam.document(doc_id)))
            await JSONResponse({"document_gets": gets})(scope, receive, send)
            return
        await fake.app(scope, receive, send)

    url, stop = serve_in_thread(app)
    base = url + stam.DEFAULT_BASE_PATH
    print(json.dumps({"base_url": base, "verzoeknummer": nr, "sha256": sha, "href": base + stam.document(doc_id)}))
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    stop()


# -- child: the client -----------------------------------------------------------------------------------------


def download(base_url: str, verzoeknummer: str, store_dir: str) -> None:
    """One ``WerkmapClient.download`` into a fresh FileStore; prints timing and this process's peak RSS."""
    import resource

    from adapter.loket.werkmap import WerkmapClient, WerkmapOptions
    from adapter.store.files import FileStore

    options = WerkmapOptions(base_url=base_url, oin=OIN, timeout=60, retries=1, backoff_initial=0.1)
    with WerkmapClient(options, FileStore(Path(store_dir))) as client:
        doc = client.referenties(verzoeknummer)["documenten"][0]
        t0 = time.perf_counter()
        path = client.download(doc)
        seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"seconds": seconds, "bytes": path.stat().st_size, "rss_mb": rss_mb, "path": str(path)}))


def raw_stream(href: str) -> None:
    """Baseline: the same bytes through httpx to nowhere (no hashing, no disk)."""
    import httpx

    t0 = time.perf_counter()
    n = 0
    with httpx.stream("GET", href, headers={"X-Oin": OIN}, timeout=60) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            n += len(chunk)
    print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": n}))


# -- parent ------------------------------------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _control(base_url: str, what: str) -> dict[str, Any]:
    import httpx

    origin = re.match(r"https?://[^/]+", base_url)
    assert origin
    return httpx.get(f"{origin[0]}{CONTROL}/{what}", timeout=10).json()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def _curl(href: str) -> float | None:
    if shutil.which("curl") is None:
        return None
    t0 = time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", f"X-Oin: {OIN}", href], check=True)
    return time.perf_counter() - t0


def _mbs(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=2 * 2**30, help="document size (e.g. 2GiB, 500MB; default 2GiB)")
    ap.add_argument("--dir", type=Path, default=None, help="where the temporary FileStores go (default: system temp)")
    args = ap.parse_args()
    size: int = args.size

    py = sys.version.split()[0]
    print(f"# werkmap download bench: document of {size:,} bytes ({size / 2**30:.2f} GiB), python {py}")
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", str(size)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        print(f"# fake werkmap ready in {time.perf_counter() - t0:.1f} s (sha256 precomputed: {info['sha256'][:16]}…)")
        base, nr, href = info["base_url"], info["verzoeknummer"], info["href"]

        rows: list[tuple[str, float, str]] = []
        curl_s = _curl(href)
        if curl_s is not None:
            rows.append(("curl -o /dev/null (baseline)", curl_s, ""))
        raw = _child("raw", href)
        assert raw["bytes"] == size
        rows.append(("httpx stream, no hash/disk (baseline)", raw["seconds"], ""))

        with tempfile.TemporaryDirectory(prefix="bench-werkmap-", dir=args.dir) as tmp:
            res = _child("download", base, nr, str(Path(tmp) / "store1"))
            verified = res["bytes"] == size and _sha256(Path(res["path"])) == info["sha256"]
            rows.append(("WerkmapClient.download (sha256 + fsync)", res["seconds"], f"peak RSS {res['rss_mb']:.0f} MB"))
            shutil.rmtree(Path(tmp) / "store1")

            gets_before = _control(base, "corrupt")["document_gets"]
            bad = _child("download", base, nr, str(Path(tmp) / "store2"))
            gets = _control(base, "requests")["document_gets"] - gets_before
            bad_ok = bad["bytes"] == size and _sha256(Path(bad["path"])) == info["sha256"]
            note = f"peak RSS {bad['rss_mb']:.0f} MB, {gets} GETs"
            rows.append(("download with 1 corrupt transfer (refetch)", bad["seconds"], note))
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(15)

    base_s = curl_s if curl_s is not None else raw["seconds"]
    print()
    print("| run | seconds | MB/s | vs baseline | notes |")
    print("|---|---:|---:|---:|---|")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds:.2f} | {_mbs(size, seconds):.0f} | {seconds / base_s:.2f}x | {note} |")
    print()
    print(f"- sha256 verified (independent re-hash of the stored file): {'yes' if verified else 'NO'}")
    print(f"- corrupt transfer detected and refetched: {'yes' if bad_ok and gets == 2 else 'NO'} ({gets} GETs)")
    peak = max(res["rss_mb"], bad["rss_mb"])
    verdict = "OK" if peak < RSS_LIMIT_MB else "TOO HIGH"
    print(f"- peak RSS of the downloading process: {peak:.0f} MB (limit {RSS_LIMIT_MB} MB): {verdict}")
    print(f"- download / httpx-raw ratio: {res['seconds'] / raw['seconds']:.2f}x")
    if not (verified and bad_ok and gets == 2 and peak < RSS_LIMIT_MB):
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "serve":
        serve(int(sys.argv[2]))
    elif cmd == "download":
        download(*sys.argv[2:5])
    elif cmd == "raw":
        raw_stream(sys.argv[2])
    else:
        main()
