"""The mutation ledger and status scripts (tools/mutation/): docs/guarantees.md's "not yet scored" table comes
from them, so a wrong answer there would misreport which code has a mutation result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "mutation"))

from common import GUARANTEE_MODULES, function_sources, mutant_function, numbers, ranges, source_sha  # noqa: E402
from status import status  # noqa: E402


def test_mutant_names_map_to_their_function_and_number() -> None:
    assert mutant_function("adapter.store.outbox.xǁDbStepsǁ_put__mutmut_12") == (
        "adapter.store.outbox",
        "DbSteps._put",
        12,
    )
    assert mutant_function("adapter.store.outbox.x_claim__mutmut_3") == ("adapter.store.outbox", "claim", 3)


def test_number_ranges_round_trip() -> None:
    assert ranges([7, 1, 2, 3, 9, 10]) == "1-3,7,9-10"
    assert numbers("1-3,7,9-10") == [1, 2, 3, 7, 9, 10]
    assert numbers(ranges([])) == []


def test_a_function_counts_as_scored_only_for_the_source_that_was_run() -> None:
    path = "adapter/store/lease.py"
    fns = function_sources((ROOT / path).read_text())
    name, src = next(iter(fns.items()))
    entry = {
        "module": "adapter.store.lease",
        "function": name,
        "source_sha256": source_sha(src),
        "commit": "x",
        "mutants": 3,
        "verdicts": {"killed": "1-3"},
    }
    stale = dict(entry, source_sha256=source_sha(src + "\n    # edited"))
    counts = {("adapter.store.lease", f): 1 for f in fns}
    [row] = status([path], [entry], counts)
    assert row["scored"] == [entry] and name not in [f for f, _ in row["unscored"]]
    [row] = status([path], [stale], counts)
    assert row["scored"] == [] and name in [f for f, _ in row["unscored"]]


def test_the_status_script_lists_every_guarantee_module() -> None:
    out = subprocess.run(
        [sys.executable, "tools/mutation/status.py"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for path in GUARANTEE_MODULES:
        assert f"| `{path}` |" in out.stdout
    ledger = json.loads((ROOT / "docs" / "mutation-ledger.json").read_text())["functions"]
    assert ledger and all(e["source_sha256"] and e["verdicts"] for e in ledger)
