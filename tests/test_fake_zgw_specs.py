"""The OpenAPI files the fake ZGW ships are the official ones, unmodified: their sha256 sums are those listed
(and those of the project's reference set, when ../shared is present); the fake and the ketensimulatie use
them by default, so nothing outside the project is needed."""

from __future__ import annotations

import hashlib

import pytest

from adapter.simulation.fake_zgw.app import SPEC_FILES, SPECS_DIR
from tests.conftest import SHARED


def sums() -> dict[str, str]:
    lines = (SPECS_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def test_every_spec_the_fake_loads_is_listed_and_unchanged() -> None:
    listed = sums()
    assert set(listed) == set(SPEC_FILES.values())
    for name, digest in listed.items():
        assert hashlib.sha256((SPECS_DIR / name).read_bytes()).hexdigest() == digest, name
    readme = (SPECS_DIR / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in listed) and "EUPL-1.2" in readme


@pytest.mark.skipif(not (SHARED / "reference" / "zgw").is_dir(), reason="../shared/reference is absent")
def test_they_are_byte_identical_to_the_reference_set() -> None:
    for name in SPEC_FILES.values():
        assert (SPECS_DIR / name).read_bytes() == (SHARED / "reference" / "zgw" / name).read_bytes(), name
