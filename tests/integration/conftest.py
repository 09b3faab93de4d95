"""Fixtures for the suite against the real Open Zaak: one server per test run (session scope), a catalogus
seeded once, and the adapter's services (in-process, workers=0) pointed at it."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import openzaak_server
from tests.integration.openzaak_server import CLIENT_ID, SECRET, OpenZaak


@pytest.fixture(scope="session")
def openzaak() -> Iterator[OpenZaak]:
    if reason := openzaak_server.skip_reason():
        pytest.skip(f"Open Zaak integration suite: {reason}")
    t0 = time.monotonic()
    root = openzaak_server.install()
    installed = time.monotonic() - t0
    # not under pytest's tmp folder: that is private to root, and the cluster runs as the postgres user
    oz = OpenZaak(root, Path(tempfile.mkdtemp(prefix="loket-openzaak-run.")))
    try:
        oz.start()
    except BaseException:
        oz.stop()
        raise
    print(f"\n[openzaak] install {installed:.1f} s (cached: {installed < 5}), start {oz.timings}")
    yield oz
    oz.stop()
    shutil.rmtree(oz.work, ignore_errors=True)


@pytest.fixture(scope="session")
def catalogus(openzaak: OpenZaak) -> dict[str, Any]:
    from tests.integration.seed import seed

    return seed(openzaak)


def target_toml(oz: OpenZaak, catalogus_url: str, *, timeout: float = 15, extra: str = "") -> str:
    return f"""
[targets.zaaksysteem]
kind = "zgw"
zaken_url = "{oz.api("zaken")}"
documenten_url = "{oz.api("documenten")}"
catalogi_url = "{oz.api("catalogi")}"
catalogus = "{catalogus_url}"
auth = {{ client_id = "{CLIENT_ID}", secret = "{SECRET}" }}
timeout = {timeout}
{extra}
"""


def delivery_toml(
    oz: OpenZaak, catalogus_url: str, mappings: Path, *, target_extra: str = "", **delivery: object
) -> str:
    settings = {
        "workers": 0,
        "poll_interval": 0.05,
        "backoff_initial": 0.05,
        "backoff_factor": 2,
        "backoff_max": 0.5,
        "max_attempts": 8,
        "lease_seconds": 60,
        **delivery,
    }
    lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
    return f'[delivery]\nmappings_dir = "{mappings}"\n{lines}\n{target_toml(oz, catalogus_url, extra=target_extra)}'
