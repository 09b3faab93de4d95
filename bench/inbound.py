"""Benchmark (not a test): acknowledged StUF-LVO messages per second through the adapter, against a bare
spyne service on the same stack measured in the same run.

    .venv/bin/python bench/inbound.py [--clients 16] [--seconds 10] [--db URL]

Starts ``loket-adapter serve`` on a fresh SQLite file (or the given database) and ``bench/bare_spyne.py``,
then drives each in turn with the same client: N concurrent keep-alive connections, each posting the
contract's example aanvraag with a unique referentienummer. Counts only answers that are a Bv03 (for the
adapter: acknowledged after commit) and prints msg/s, p50/p99 latency and the ratio adapter/bare.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = (ROOT / "fixtures" / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml").read_bytes()
REF = re.compile(rb"<StUF:referentienummer>[^<]*</StUF:referentienummer>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


@dataclass
class Result:
    name: str
    acked: int
    failed: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.acked / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[int(p) - 1] * 1000

    def line(self) -> str:
        return (
            f"{self.name:22} {self.rate:8.1f} acked msg/s   p50 {self.pct(50):6.1f} ms   p99 {self.pct(99):6.1f} ms"
            f"   server CPU {1000 * self.cpu_seconds / max(self.acked, 1):.2f} ms/msg"
            f"   ({self.acked} acked, {self.failed} not acked, {self.seconds:.1f} s)"
        )


def cpu_of(pid: int) -> float:
    """user + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(name: str, port: int, clients: int, seconds: float, pid: int | None = None) -> Result:
    latencies: list[float] = []
    counts = {"acked": 0, "failed": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        acked = failed = 0
        while time.monotonic() < stop_at:
            body = REF.sub(
                b"<StUF:referentienummer>B-" + uuid.uuid4().hex[:30].encode() + b"</StUF:referentienummer>",
                TEMPLATE,
                count=1,
            )
            t0 = time.perf_counter()
            conn.request(
                "POST", "/soap/stuf-lvo", body, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
            )
            resp = conn.getresponse()
            data = resp.read()
            dt = time.perf_counter() - t0
            if resp.status == 200 and b"Bv03Bericht" in data:
                acked += 1
                mine.append(dt)
            else:
                failed += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["acked"] += acked
            counts["failed"] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu0 = cpu_of(pid) if pid else 0.0
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = cpu_of(pid) - cpu0 if pid else 0.0
    return Result(name, counts["acked"], counts["failed"], time.monotonic() - t0, latencies, cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--threads", type=int, default=16, help="request threads of both servers")
    ap.add_argument("--db", help="database URL for the adapter (default: a new SQLite file)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    db = args.db or f"sqlite:///{tmp / 'adapter.db'}"
    a_port, b_port = free_port(), free_port()
    config = tmp / "config.toml"
    config.write_text(
        f'[server]\nport = {a_port}\nenvironment = "production"\nrequest_threads = {args.threads}\n'
        f'[store]\nurl = "{db}"\n[delivery]\nenabled = false\n'
        '[[stuf.ontvangers]]\norganisatie = "00000001002564440000"\napplicatie = "ZAAKSYSTEEM"\n'
    )
    log = (tmp / "adapter.log").open("wb")
    adapter = subprocess.Popen(
        [sys.executable, "-m", "adapter", "--config", str(config), "serve"], cwd=ROOT, stdout=log, stderr=log
    )
    bare = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_spyne.py"), str(b_port), str(args.threads)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(a_port, "/healthz", adapter)
        wait_up(b_port, "/", bare)
        drive("warm-up", a_port, 2, 1.0)
        drive("warm-up", b_port, 2, 1.0)
        backend = db.split(":")[0]
        print(f"inbound: {args.clients} clients, {args.seconds:.0f} s each, {os.cpu_count()} cores, db {backend}")
        base = drive("bare spyne (baseline)", b_port, args.clients, args.seconds, bare.pid)
        ours = drive("loket-adapter", a_port, args.clients, args.seconds, adapter.pid)
        print(base.line())
        print(ours.line())
        print(f"ratio adapter/bare: {ours.rate / base.rate:.2f}x")
    finally:
        for p in (adapter, bare):
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    main()
