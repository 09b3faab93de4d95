"""What the mutation scripts share: the ledger's place, function sources by name, mutmut's mutant names."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEDGER = ROOT / "docs" / "mutation-ledger.json"

# The modules behind README's guarantees (issue #12: store/, targets/base.py, the targets' step code, inbound/,
# the delivery worker, jobs/), plus the werkmap client (streaming) and `mappings check` (its one-line problems).
GUARANTEE_MODULES = [
    "adapter/store/writer.py",
    "adapter/store/db.py",
    "adapter/store/messages.py",
    "adapter/store/outbox.py",
    "adapter/store/lease.py",
    "adapter/store/jobs.py",
    "adapter/store/files.py",
    "adapter/store/retention.py",
    "adapter/store/postbox.py",
    "adapter/store/uploads.py",
    "adapter/inbound/intake.py",
    "adapter/inbound/soap.py",
    "adapter/inbound/stuf_lvo.py",
    "adapter/inbound/stam.py",
    "adapter/delivery/worker.py",
    "adapter/targets/base.py",
    "adapter/targets/zgw/plugin.py",
    "adapter/targets/stuf_zkn/plugin.py",
    "adapter/targets/stuf_zkn/client.py",
    "adapter/jobs/scheduler.py",
    "adapter/jobs/werkmap_poll.py",
    "adapter/loket/werkmap.py",
    "adapter/mapping/check.py",
]


def function_sources(source: str) -> dict[str, str]:
    """``{"Class.method" or "function": its source text, decorators included}`` for a module's source."""
    out: dict[str, str] = {}
    if not source:
        return out
    lines = source.splitlines()

    def walk(node: ast.AST, prefix: str) -> None:
        for n in ast.iter_child_nodes(node):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                start = n.decorator_list[0].lineno if n.decorator_list else n.lineno
                out[prefix + n.name] = "\n".join(lines[start - 1 : n.end_lineno])
            elif isinstance(n, ast.ClassDef):
                walk(n, prefix + n.name + ".")

    walk(ast.parse(source), "")
    return out


def source_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mutant_function(key: str) -> tuple[str, str, int]:
    """``adapter.x.xǁClassǁmethod__mutmut_7`` → ``("adapter.x", "Class.method", 7)``; ``x_func__mutmut_3`` likewise."""
    name, _, number = key.rpartition("__mutmut_")
    module, _, last = name.rpartition(".")
    if last.startswith("xǁ"):
        cls, method = last[2:].split("ǁ")[:2]
        return module, f"{cls}.{method}", int(number)
    return module, last[2:], int(number)


def ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3,7"``."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def numbers(text: str) -> list[int]:
    """The inverse of :func:`ranges`."""
    out: list[int] = []
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def ledger_index(entries: list[dict]) -> dict[tuple[str, str, str], dict]:
    """Ledger entries by (module, function, source sha256): a function's result for one version of its code."""
    return {(e["module"], e["function"], e["source_sha256"]): e for e in entries}
