"""Where the project's data files live, resolved once relative to the source tree."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
XSD_DIR = PROJECT_ROOT / "xsd"
FIXTURES_DIR = PROJECT_ROOT / "fixtures"
MAPPINGS_DIR = PROJECT_ROOT / "mappings"
