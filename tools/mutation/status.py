"""Which functions of the guarantee modules have a mutation result for their current code.

A function counts as scored when the ledger (``docs/mutation-ledger.json``, written by ``ledger.py``) holds a
run of exactly its present source. Anything edited since its run, or never run, is listed as not scored.

    python tools/mutation/status.py                      # the guarantee modules at the working tree
    python tools/mutation/status.py --mutants DIR        # also count the mutants of unscored functions
                                                         # (DIR: a mutmut mutants/ directory of this code)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_common import (
    GUARANTEE_MODULES,
    LEDGER,
    ROOT,
    function_sources,
    ledger_index,
    mutant_function,
    numbers,
    source_sha,
)


def mutant_counts(mutants: Path | None) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for meta in sorted(mutants.rglob("*.py.meta")) if mutants else []:
        for key in json.loads(meta.read_text())["exit_code_by_key"]:
            module, function, _ = mutant_function(key)
            counts[(module, function)] = counts.get((module, function), 0) + 1
    return counts


def status(modules: list[str], ledger: list[dict], counts: dict[tuple[str, str], int]) -> list[dict]:
    """Per module: scored functions with their figures, and the functions without a result for this code."""
    known = ledger_index(ledger)
    rows = []
    for path in modules:
        module = path.removesuffix(".py").replace("/", ".")
        scored, unscored = [], []
        for function, src in function_sources((ROOT / path).read_text()).items():
            e = known.get((module, function, source_sha(src)))
            n = counts.get((module, function), 0 if counts else None)
            if e:
                scored.append(e)
            elif n != 0:  # a function mutmut makes no mutants of needs no run
                unscored.append((function, n))
        rows.append({"module": path, "scored": scored, "unscored": unscored})
    return rows


def figures(entries: list[dict]) -> tuple[int, int]:
    """(mutants, run) over ledger entries. Which survivors are explained is docs/guarantees.md's business."""
    mutants = sum(e["mutants"] for e in entries)
    not_run = sum(len(numbers(v)) for e in entries for k, v in e["verdicts"].items() if k == "not checked")
    return mutants, mutants - not_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=Path, help="a mutmut mutants/ directory generated from this code")
    ap.add_argument("--ledger", type=Path, default=LEDGER)
    ap.add_argument("-v", "--verbose", action="store_true", help="name every unscored function")
    args = ap.parse_args()
    ledger = json.loads(args.ledger.read_text())["functions"]
    rows = status(GUARANTEE_MODULES, ledger, mutant_counts(args.mutants))
    print("| module | functions with a result | their mutants (run) | functions without | their mutants |")
    print("|---|---:|---:|---:|---:|")
    total = [0, 0, 0, 0, 0]
    for r in rows:
        mutants, run = figures(r["scored"])
        todo = [n for _, n in r["unscored"]]
        known = None not in todo
        todo_n = sum(n for n in todo if n)
        print(
            f"| `{r['module']}` | {len(r['scored'])} | {mutants} ({run}) | {len(todo)} | {todo_n if known else '?'} |"
        )
        for i, v in enumerate((len(r["scored"]), mutants, run, len(todo), todo_n)):
            total[i] += v
        if args.verbose and r["unscored"]:
            print("|  | | | " + ", ".join(f"`{f}`" + (f" {n}" if n else "") for f, n in r["unscored"]) + " | |")
    print(f"| **all** | {total[0]} | {total[1]} ({total[2]}) | {total[3]} | {total[4] if args.mutants else '?'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
