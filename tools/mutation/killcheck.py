"""Does a test kill a mutant? Run it in the clone's ``mutants/`` without the mutant (must pass), then with it active
(must fail), exactly as mutmut runs it: ``MUTANT_UNDER_TEST`` set, which a ``serve`` or CLI child inherits.

A survivor counts as killed by a new test only after this check: a test that also fails without the mutant, or
passes with it, proves nothing about it. The tests are copied from this working tree into ``mutants/tests``
first, so a test not yet committed can be checked. (``mutmut apply`` is not used: mutmut 3.8.1 writes a
method's mutant over the first method of that name in the module, e.g. another class's ``__init__``.)

    python tools/mutation/killcheck.py /tmp/mutW 'adapter.delivery.worker.xǁOutboxǁ_run__mutmut_12' \\
        tests/test_mutation_kills.py::test_each_attempt_is_visible_on_the_delivery_and_its_message

CLONE is a scratch clone whose ``mutants/`` run.py made (a run may still be going on in it). Exit status 0 only
when every mutant named is killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_common import ROOT


def pytest(clone: Path, tests: list[str], mutant: str | None) -> str | None:
    """None when the tests pass, else the first failing test's id."""
    python = clone / ".venv" / "bin" / "python"
    args = [str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    env = {k: v for k, v in os.environ.items() if k != "MUTANT_UNDER_TEST"}
    env |= {"LOKET_SKIP_OPENZAAK": "1", "PYTHONPATH": str(clone / "mutants")}  # the mutated tree, whatever the venv
    if mutant:
        env["MUTANT_UNDER_TEST"] = mutant
    out = subprocess.run(args, cwd=clone / "mutants", env=env, capture_output=True, text=True)
    if out.returncode == 0:
        return None
    failed = [line.split()[1] for line in out.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return failed[0] if failed else f"pytest exit status {out.returncode}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", type=Path)
    ap.add_argument("mutants", help="mutmut names, comma-separated")
    ap.add_argument("tests", nargs="+", help="pytest ids, as in selections.toml")
    args = ap.parse_args()
    mutants = args.clone / "mutants"
    if not (mutants / "adapter").is_dir():
        sys.exit(f"{args.clone} has no mutants/: make them with run.py first")
    shutil.copytree(ROOT / "tests", mutants / "tests", dirs_exist_ok=True)
    failing = pytest(args.clone, args.tests, None)
    if failing:
        print(f"not checked: without a mutant {failing} fails")
        return 1
    verdicts = {m: pytest(args.clone, args.tests, m) for m in args.mutants.split(",") if m}
    for mutant, by in verdicts.items():
        print(f"killed     {mutant}  by {by}" if by else f"SURVIVES   {mutant}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
