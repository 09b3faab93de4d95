"""Run mutmut over one module of the adapter, in a scratch clone, with a fixed test selection.

Why not plain ``mutmut run``: mutmut learns which tests reach a function by tracing them in its own process, so
it misses the tests that drive a ``serve`` or CLI subprocess and attributes every in-process delivery test to
nearly every function (each survivor then runs ~70 tests). The selection per module and function lives in
``selections.toml`` beside this file. Mutants that change only a string constant (mostly texts; but also dict
keys, so they do run) come last, so a deadline cuts those first. mutmut writes a ``mutants/`` copy and may
rewrite sources: never run it in the tree you commit from.

    python tools/mutation/run.py --clone /tmp/mut-lease adapter/store/lease.py
    python tools/mutation/run.py --clone /tmp/mut-zgw adapter/targets/zgw/plugin.py \\
        --functions _Plan._document,_Plan._link --children 1 --stop-at 10:20

Afterwards: ``python tools/mutation/ledger.py CLONE`` records the verdicts in docs/mutation-ledger.json;
``mutmut show NAME`` (in the clone) prints a survivor's diff; ``killcheck.py`` checks a new test against it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_common import LEDGER, ROOT, function_sources, ledger_index, mutant_function, numbers, source_sha

HERE = Path(__file__).resolve().parent
MUTMUT = "mutmut==3.8.1"
ALSO_COPY = ["fixtures/", "mappings/", "xsd/", "config.example.toml", "docs/", "README.md"]


def sh(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, check=True)


def prepare(clone: Path) -> Path:
    """A clone of this repository at its HEAD with its own venv and mutmut; reused when it exists."""
    python = clone / ".venv" / "bin" / "python"
    if not clone.exists():
        sh("git", "clone", "-q", ROOT, clone)
        shared = ROOT.parent / "shared"
        if shared.exists():
            (clone / "shared").symlink_to(shared)  # the tests look for ../shared; mutmut runs them in mutants/
    if not python.exists():
        sh(sys.executable, "-m", "venv", clone / ".venv")
        sh(python, "-m", "pip", "install", "-q", "-c", "constraints.txt", "-e", ".[dev]", MUTMUT, cwd=clone)
    return python


def selection(module: str) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """``{"*": module default, "Class.method": its own tests}``, the module's ``untraced`` tests and its
    ``leave_out`` patterns from selections.toml."""
    data = tomllib.loads((HERE / "selections.toml").read_text())
    try:
        entry = data["modules"][module]
    except KeyError:
        sys.exit(f'selections.toml has no [modules."{module}"]: add the tests that exercise it')
    return {"*": entry["tests"], **entry.get("functions", {})}, entry.get("untraced", []), entry.get("leave_out", [])


def configure(clone: Path, module: str, tests: list[str]) -> None:
    """The clone's ``[tool.mutmut]``: this module only, the stats pass over the selected test files only."""
    files = sorted({t.split("::")[0] for t in tests})
    table = "\n".join(
        [
            "[tool.mutmut]",
            'source_paths = ["adapter/"]',
            f"only_mutate = {json.dumps([module])}",
            f"also_copy = {json.dumps(ALSO_COPY)}",
            'pytest_add_cli_args = ["-m", "not slow", "-p", "no:cacheprovider", "-p", "no:unraisableexception",'
            ' "--timeout=60"]',
            f"pytest_add_cli_args_test_selection = {json.dumps(files)}",
            # the fork server's wall limit is (traced test time + constant) * multiplier; the tracing times
            # leave out module fixtures (a `serve` started and stopped per file): 64 intake tests traced at
            # 14 s run 71 s, so the earlier 20 s / 2.0 called every survivor of intake.py a timeout
            "timeout_multiplier = 3.0",
            "timeout_constant = 60.0",
            'process_isolation = "forkserver"',
            "",
        ]
    )
    path = clone / "pyproject.toml"
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", path.read_text())
    path.write_text(text.rstrip("\n") + "\n\n" + table)


def matching(spec: str, known: list[str]) -> list[str]:
    """Test ids a selection entry names: a file, a test, or a test with all its parameter cases."""
    hits = [t for t in known if t == spec or t.startswith(spec + "[") or t.startswith(spec + "::")]
    if not hits:
        sys.exit(f"selections.toml: no collected test matches {spec!r}")
    return hits


def curate(
    clone: Path,
    module: str,
    sel: dict[str, list[str]],
    untraced: list[str],
    children: bool = True,
    leave_out: Sequence[str] = (),
) -> None:
    """A function's tests: those of its selection (its own, else the module default) that can see its mutants.
    A mutant is active only inside its function, so a test that never calls it cannot kill it: of the selection
    a function keeps the tests mutmut's tracing pass saw call it, and those that start a Python child process
    (``serve``, the CLI; noted by the tracing pass in ``mutmut-children.json``), which runs the mutant where the
    tracing cannot look, and the other tests of their files (the servers are module-scoped fixtures).
    ``untraced`` (selections.toml) names more tests to keep regardless. Leaving out the rest loses no kill and
    saves their whole run on every survivor. Without ``children`` the child-starting tests are left out: a
    quick first pass whose survivors a second run (``--survivors``) gives the whole selection. A test id
    containing one of ``leave_out`` (selections.toml) is left out too: slow variants whose kills a cheaper
    sibling makes; its survivors are then checked against the whole files with ``killcheck.py``."""
    path = clone / "mutants" / "mutmut-stats.json"
    traced_path = path.with_name("mutmut-stats.traced.json")
    if not traced_path.exists():  # the tracing pass's own lists, kept: this function overwrites them
        traced_path.write_text(path.read_text())
    traced = json.loads(traced_path.read_text())["tests_by_mangled_function_name"]
    stats = json.loads(path.read_text())
    known = sorted(stats["duration_by_test"])
    tests = stats["tests_by_mangled_function_name"]
    children_list = clone / "mutants" / "mutmut-children.json"
    keep = {t for spec in untraced for t in matching(spec, known)}
    starters = set(json.loads(children_list.read_text())) if children and children_list.exists() else set()
    # a server fixture is module-scoped: the test that started it is recorded, its neighbours talk to it too
    server_files = {s.partition("::")[0] for s in starters}
    keep |= {t for t in known if t.partition("::")[0] in server_files}
    for name in function_names(clone, module):
        _, function, _ = mutant_function(name + "__mutmut_1")
        seen = set(traced.get(name, ()))
        ids: list[str] = []
        for spec in sel.get(function, sel["*"]):
            ids += [
                t
                for t in matching(spec, known)
                if t not in ids and (t in seen or t in keep) and not any(p in t for p in leave_out)
            ]
        tests[name] = ids
    path.write_text(json.dumps(stats))


#: mutmut 3.8.1's exit code for each verdict name the ledger keeps (``mutmut.stats.status_by_exit_code``, inverted)
EXIT_CODE = {
    "killed": 1,
    "survived": 0,
    "no tests": 33,
    "skipped": 34,
    "suspicious": 35,
    "timeout": 36,
    "caught by type check": 37,
    "segfault": -11,
}


def from_ledger(clone: Path, module: str) -> int:
    """Give every mutant without a verdict the ledger's, where the ledger holds a run of its function's present
    source (same sha256: mutmut numbers a function's mutants the same way each time). A function a run left
    unfinished then runs only its missing mutants. Returns how many verdicts were taken."""
    ledger = json.loads(LEDGER.read_text())["functions"]
    known = ledger_index(ledger)
    dotted = module.removesuffix(".py").replace("/", ".")
    sources = function_sources((clone / module).read_text())
    meta_path = clone / "mutants" / (module + ".meta")
    meta = json.loads(meta_path.read_text())
    taken = 0
    for key, code in meta["exit_code_by_key"].items():
        _, function, number = mutant_function(key)
        src = sources.get(function)
        entry = known.get((dotted, function, source_sha(src))) if code is None and src else None
        for verdict, nums in (entry or {}).get("verdicts", {}).items():
            if verdict in EXIT_CODE and number in numbers(nums):
                meta["exit_code_by_key"][key] = EXIT_CODE[verdict]
                taken += 1
    meta_path.write_text(json.dumps(meta))
    return taken


def function_names(clone: Path, module: str) -> list[str]:
    """mutmut's mangled names (``adapter.x.xǁClassǁm``) of the module's mutated functions."""
    meta = json.loads((clone / "mutants" / (module + ".meta")).read_text())["exit_code_by_key"]
    return sorted({k.rpartition("__mutmut_")[0] for k in meta})


def string_only(clone: Path, module: str) -> set[str]:
    """Mutants whose function equals the original once every string constant is blanked."""

    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            return ast.Constant("") if isinstance(node.value, str) else node

    out: set[str] = set()
    prefix = module.removesuffix(".py").replace("/", ".")
    originals: dict[str, str] = {}
    mutants: dict[str, str] = {}
    for node in ast.walk(ast.parse((clone / "mutants" / module).read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name:
            base, _, n = node.name.rpartition("__mutmut_")
            node.name = "f"
            text = ast.dump(Blank().visit(node))
            (originals if n == "orig" else mutants)[f"{base}__mutmut_{n}"] = text
    for key, text in mutants.items():
        base = key.rpartition("__mutmut_")[0]
        if originals.get(f"{base}__mutmut_orig") == text:
            out.add(f"{prefix}.{key}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("module", help="e.g. adapter/store/lease.py")
    ap.add_argument("--clone", type=Path, required=True, help="scratch clone (made if missing)")
    ap.add_argument("--functions", default="", help="only these functions (Class.method,function)")
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--stop-at", help="HH:MM (UTC, local clock): stop the run then, whatever it reached")
    ap.add_argument("--survivors", action="store_true", help="run the survivors again too (after adding tests)")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="leave out the tests that start a serve or CLI child (a quick first pass; then --survivors without it)",
    )
    ap.add_argument("--skip-strings", action="store_true", help="leave out mutants that change only a string constant")
    ap.add_argument(
        "--from-ledger",
        action="store_true",
        help="take the ledger's verdicts for functions whose present code it has; run only the mutants without one",
    )
    args = ap.parse_args()
    if args.clone.resolve() == ROOT:
        sys.exit("refusing to run mutmut in the working tree: give a scratch --clone")
    python = prepare(args.clone)
    sel, untraced, leave_out = selection(args.module)
    configure(args.clone, args.module, [t for ts in sel.values() for t in ts])
    inner = [python, HERE / "_inner.py"]
    stats = args.clone / "mutants" / "mutmut-stats.json"
    files = {t.split("::")[0] for ts in sel.values() for t in ts}
    if stats.exists() and not files <= {t.split("::")[0] for t in json.loads(stats.read_text())["duration_by_test"]}:
        stats.unlink()  # the selection names a test file the tracing pass did not run: trace again
    if not stats.exists():
        stats.with_name("mutmut-stats.traced.json").unlink(missing_ok=True)
        stats.with_name("mutmut-children.json").unlink(missing_ok=True)
        sh(*inner, "stats", cwd=args.clone)
    curate(args.clone, args.module, sel, untraced, children=not args.in_process, leave_out=leave_out)
    if args.from_ledger:
        print(f"{from_ledger(args.clone, args.module)} verdicts taken from {LEDGER.name}", flush=True)
    wanted = set(filter(None, args.functions.split(",")))
    meta = json.loads((args.clone / "mutants" / (args.module + ".meta")).read_text())["exit_code_by_key"]
    todo = (None, 0) if args.survivors else (None,)
    names = [k for k in meta if meta[k] in todo and (not wanted or mutant_function(k)[1] in wanted)]
    texts = string_only(args.clone, args.module)
    if args.skip_strings:
        names = [n for n in names if n not in texts]
    names.sort(key=lambda n: (n in texts, mutant_function(n)[1], mutant_function(n)[2]))
    order = args.clone / "mutants" / "run-order.json"
    order.write_text(json.dumps({"names": names, "string_only": sorted(texts)}))
    print(f"{len(names)} mutants to run ({sum(n in texts for n in names)} string-only, last)", flush=True)
    if not names:  # mutmut given no names runs every mutant of the project
        return 0
    proc = subprocess.Popen(
        [*map(str, inner), "run", str(order), str(args.children)],
        cwd=args.clone,
        env={**os.environ, "LOKET_SKIP_OPENZAAK": "1"},
    )
    deadline = None
    if args.stop_at:
        h, m = map(int, args.stop_at.split(":"))
        deadline = datetime.now().replace(hour=h, minute=m, second=0).timestamp()
    while proc.poll() is None:
        if deadline and time.time() > deadline:
            proc.terminate()
            proc.wait(30)
            print(f"stopped at {args.stop_at}", flush=True)
        time.sleep(5)
    sh(*inner, "summary", str(order), cwd=args.clone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
