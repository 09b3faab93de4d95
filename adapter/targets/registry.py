"""The target plugin registry: a kind names a plugin, a plugin declares its typed options and builds the
target (as Open Forms' registration plugins do). ``[targets.<name>]`` tables are validated by their
plugin's options model, so a key no plugin knows is refused with file, key and problem.

Plugins are imported on first use: a deployment with only a ZGW target never loads the StUF-ZKN code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from adapter.config import Settings, config_error
from adapter.errors import ConfigError
from adapter.targets.base import Target

#: kind → module that defines ``PLUGIN``
KINDS: dict[str, str] = {
    "zgw": "adapter.targets.zgw",
    "stuf-zkn": "adapter.targets.stuf_zkn",
}


@dataclass(frozen=True)
class Plugin:
    """A kind of target: its options model and how to build one from validated options."""

    kind: str
    options: type[BaseModel]
    build: Callable[[str, Any], Target]


def plugin(kind: str) -> Plugin:
    module = KINDS.get(kind)
    if module is None:
        raise KeyError(kind)
    found = importlib.import_module(module).PLUGIN
    assert isinstance(found, Plugin) and found.kind == kind, f"{module}.PLUGIN is not the {kind} plugin"
    return found


def _build(name: str, table: dict[str, Any], source: str) -> Target:
    kind = table.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"{source}: targets.{name}.kind: unknown target kind {kind!r} ({', '.join(KINDS)})")
    p = plugin(kind)
    return p.build(name, p.options.model_validate(table))


def build_targets(settings: Settings) -> dict[str, Target]:
    targets = {}
    for name, table in settings.targets.items():
        try:
            targets[name] = _build(name, table, settings.source)
        except ValidationError as exc:
            raise config_error(exc, settings.source, f"targets.{name}.") from None
    return targets
