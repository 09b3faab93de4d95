"""Record what mutmut found in a scratch clone, per function and per version of its source.

A mutation result is only worth something for the code it was run against, and a run lives in a scratch
clone that does not outlast the machine. This keeps, in ``docs/mutation-ledger.json``, for every function a
run reached: the sha256 of the function's source, the last commit that changed its module before the run, the
day of the run, and mutmut's verdict per mutant number. The status script then tells, for the code of any
later commit, which functions still have a valid result.

    python tools/mutation/ledger.py /tmp/mutclone [more clones]   # merge their results into the ledger

Verdicts are mutmut's raw ones (killed, survived, timeout, not run, …); which survivors are explained and
which tests were added for them is in docs/guarantees.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_common import LEDGER, function_sources, mutant_function, numbers, ranges, source_sha


def verdicts() -> dict[object, str]:
    """mutmut's own names for its exit codes (run this with the scratch clone's Python, where mutmut is)."""
    try:
        from mutmut.stats import status_by_exit_code
    except ImportError:
        sys.exit("mutmut is not installed here: run this with the Python of the scratch clone's venv")
    return status_by_exit_code  # type: ignore[no-any-return]


def git(clone: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True, check=True).stdout


def clone_entries(clone: Path) -> list[dict]:
    """One entry per (module, function) of the clone's mutants directory."""
    rev = "HEAD"
    # a scratch commit of the mutmut configuration on top of main: the adapter code is its parent's
    if git(clone, "log", "-1", "--format=%s").startswith("mutmut config"):
        rev = "HEAD~1"
    verdict = verdicts()
    per: dict[tuple[str, str], dict[int, object]] = {}
    run_date: dict[str, str] = {}
    for meta in sorted((clone / "mutants").rglob("*.py.meta")):
        day = datetime.fromtimestamp(meta.stat().st_mtime, UTC).date().isoformat()
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            run_date[mutant_function(key)[0]] = day
            module, function, number = mutant_function(key)
            per.setdefault((module, function), {})[number] = code
    out = []
    sources: dict[str, dict[str, str]] = {}
    commits: dict[str, str] = {}
    for (module, function), codes in sorted(per.items()):
        path = module.replace(".", "/") + ".py"
        if path not in sources:
            sources[path] = function_sources(git(clone, "show", f"{rev}:{path}"))
            # the module's code as of its last change: a commit that is on main (the clone's own HEAD may not be)
            commits[path] = git(clone, "log", "-1", "--format=%h", "--abbrev=7", rev, "--", path).strip()
        src = sources[path].get(function)
        if src is None:
            continue
        by: dict[str, list[int]] = {}
        for number, code in codes.items():
            by.setdefault(verdict[code], []).append(number)
        if all(v is None for v in codes.values()):
            continue  # nothing of this function ran
        out.append(
            {
                "module": module,
                "function": function,
                "source_sha256": source_sha(src),
                "commit": commits[path],
                "run": run_date[module],
                "mutants": len(codes),
                "verdicts": {k: ranges(v) for k, v in sorted(by.items())},
            }
        )
    return out


def merge(ledger: list[dict], new: list[dict]) -> list[dict]:
    """Keep one entry per function version; a later clone of the same version that ran more mutants (or as
    many, with other verdicts) wins. The same verdicts again (a ``--from-ledger`` run takes them over for the
    functions it did not run) keep their entry: its commit and date say when they were found."""

    def run(e: dict) -> int:
        return e["mutants"] - sum(len(numbers(v)) for k, v in e["verdicts"].items() if k == "not checked")

    index = {(e["module"], e["function"], e["source_sha256"]): e for e in ledger}
    for e in new:
        k = (e["module"], e["function"], e["source_sha256"])
        old = index.get(k)
        if old is None or run(e) > run(old) or (run(e) == run(old) and e["verdicts"] != old["verdicts"]):
            index[k] = e
    return sorted(index.values(), key=lambda e: (e["module"], e["function"], e["commit"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clones", nargs="+", type=Path)
    ap.add_argument("--ledger", type=Path, default=LEDGER)
    args = ap.parse_args()
    ledger = json.loads(args.ledger.read_text())["functions"] if args.ledger.exists() else []
    for clone in args.clones:
        if not (clone / "mutants").is_dir():
            print(f"{clone}: no mutants/ directory (not a mutmut scratch clone)", file=sys.stderr)
            return 2
        ledger = merge(ledger, clone_entries(clone))
    args.ledger.write_text(json.dumps({"functions": ledger}, indent=1, ensure_ascii=False) + "\n")
    print(f"{args.ledger}: {len(ledger)} function versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
