"""``purge``: the scheduled retention run (``adapter.store.retention``), once per ``[retention] purge_minutes``."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.services import Services, resolve_path
from adapter.store import retention


@dataclass(frozen=True)
class PurgeResult:
    found: int  # message bodies purged
    new: int  # files removed
    errors: int
    detail: str


def run(services: Services) -> PurgeResult:
    settings = services.settings
    files_root = resolve_path(settings, settings.store.files_dir)
    result = retention.purge(services.engine, settings.retention, files_root)
    return PurgeResult(len(result.messages), len(result.files), len(result.errors), result.summary())
