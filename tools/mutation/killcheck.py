"""Does a test kill a mutant? Run it on the clone's code without the mutant (must pass), then with it (must fail).

A survivor counts as killed by a new test only after this check: a test that also fails without the mutant, or
passes with it, proves nothing about it. The tests are copied from this working tree into the clone first, so a
test not yet committed can be checked; the clone's source is restored afterwards.

    python tools/mutation/killcheck.py /tmp/mutW adapter.delivery.worker.xǁOutboxǁ_run__mutmut_12 \\
        tests/test_mutation_kills.py::test_each_attempt_is_visible_on_the_delivery_and_its_message

CLONE is a scratch clone whose ``mutants/`` run.py made (a run may still be going on in it: it works in
``mutants/``, this in the clone's own tree). Exit status 0 only when every mutant named is killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_common import ROOT, mutant_function


def pytest(clone: Path, tests: list[str]) -> int:
    python = clone / ".venv" / "bin" / "python"
    args = [str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    # the clone's code first, whichever checkout the venv was installed from
    env = {**os.environ, "LOKET_SKIP_OPENZAAK": "1", "PYTHONPATH": str(clone)}
    return subprocess.run(args, cwd=clone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def module_path(mutant: str) -> str:
    """``adapter.store.messages.x_accept__mutmut_52`` → ``adapter/store/messages.py``"""
    module, _, _ = mutant_function(mutant)
    return module.replace(".", "/") + ".py"


def check(clone: Path, mutant: str, tests: list[str]) -> str:
    path = module_path(mutant)
    subprocess.run(["git", "checkout", "-q", "--", path], cwd=clone, check=True)
    if pytest(clone, tests) != 0:
        return "not checked: the tests fail without the mutant"
    mutmut = clone / ".venv" / "bin" / "mutmut"
    subprocess.run([str(mutmut), "apply", mutant], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    try:
        if subprocess.run(["git", "diff", "--quiet", "--", path], cwd=clone).returncode == 0:
            return "not checked: mutmut applied nothing"
        return "killed" if pytest(clone, tests) != 0 else "SURVIVES"
    finally:
        subprocess.run(["git", "checkout", "-q", "--", path], cwd=clone, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", type=Path)
    ap.add_argument("mutants", help="mutmut names, comma-separated")
    ap.add_argument("tests", nargs="+", help="pytest ids, as in selections.toml")
    args = ap.parse_args()
    if args.clone.resolve() == ROOT:
        sys.exit("refusing to apply mutants in the working tree: give a scratch clone")
    if not (args.clone / "mutants").is_dir():
        sys.exit(f"{args.clone} has no mutants/: make them with run.py first")
    shutil.copytree(ROOT / "tests", args.clone / "tests", dirs_exist_ok=True)
    verdicts = {m: check(args.clone, m, args.tests) for m in args.mutants.split(",") if m}
    for mutant, verdict in verdicts.items():
        print(f"{verdict:50} {mutant}")
    return 0 if all(v == "killed" for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
