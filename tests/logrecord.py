"""Record a module's log lines by replacing its ``log``: structlog caches its loggers on first use, so
``structlog.testing.capture_logs`` can miss the lines of a module that logged earlier in a full run."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


def record_log(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[dict[str, Any]]:
    """Every later line of ``module.log`` as ``{"level": …, "event": …, **fields}``, in order."""
    lines: list[dict[str, Any]] = []

    class Recorder:
        def __getattr__(self, level: str) -> Callable[..., None]:
            return lambda event, *args, **kw: lines.append({"level": level, "event": event, **kw})

    monkeypatch.setattr(module, "log", Recorder())
    return lines
