"""Build the configured targets: ``[targets.<name>]`` tables, validated by their plugin's options."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from adapter.config import Settings, config_error
from adapter.errors import ConfigError
from adapter.targets.base import Target


def _build(name: str, table: dict[str, Any], source: str) -> Target:
    kind = table.get("kind")
    if kind == "zgw":
        from adapter.targets.zgw.options import ZgwOptions
        from adapter.targets.zgw.plugin import ZgwTarget

        return ZgwTarget(name, ZgwOptions.model_validate(table))
    if kind == "stuf-zkn":
        from adapter.targets.stuf_zkn.options import StufZknOptions
        from adapter.targets.stuf_zkn.plugin import StufZknTarget

        return StufZknTarget(name, StufZknOptions.model_validate(table))
    raise ConfigError(f"{source}: targets.{name}.kind: unknown target kind {kind!r} (zgw, stuf-zkn)")


def build_targets(settings: Settings) -> dict[str, Target]:
    targets = {}
    for name, table in settings.targets.items():
        try:
            targets[name] = _build(name, table, settings.source)
        except ValidationError as exc:
            raise config_error(exc, settings.source, f"targets.{name}.") from None
    return targets
