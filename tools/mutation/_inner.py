"""The part of run.py that runs inside the scratch clone's venv, where mutmut is importable.

    _inner.py stats                  generate the mutants and trace the selected test files once, then stop
                                     (and note which tests start a Python child: mutants/mutmut-children.json)
    _inner.py run ORDER.json N       run the listed mutants with N children, in the listed order
    _inner.py summary ORDER.json     verdicts per function of the listed mutants

What is changed in mutmut for ``run``, and why: the clean-suite check is skipped (the selection was just run in
the stats pass; the whole suite in mutmut's order is slower than the mutants it guards); the traced test lists
are not re-collected (run.py replaced them with the selection); a mutant's tests run cheapest first with ``-x``;
mutants run in ORDER.json's order (string-only last), so a deadline cuts the least useful ones; a test run that
crashes (pytest cannot even start: exit 4, e.g. a traced test id that does not exist in the child) is recorded in
``mutants/mutmut-crashes.log`` and counted as suspicious, where mutmut 3.8.1 would count it as a caught timeout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mutmut.__main__ as M
from mutmut.runners import harness
from mutmut.stats import status_by_exit_code
from mutmut.workers import isolation


def record_children(out: Path) -> None:
    """Note the tests that start a Python child process (``serve``, the CLI, helper scripts). mutmut's tracing
    cannot see into the child, but the child runs the mutant: it starts in ``mutants/`` (so ``python -m adapter``
    imports the mutated code) and inherits ``MUTANT_UNDER_TEST``. run.py keeps these tests for every function."""
    import os
    import subprocess

    seen: set[str] = set()
    init = subprocess.Popen.__init__

    def noting(self: subprocess.Popen, args: object, *a: object, **kw: object) -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST")
        if test and isinstance(args, list | tuple) and args and str(args[0]) == sys.executable:
            name = test.rpartition(" (")[0].removeprefix("mutants/")
            if name not in seen:
                seen.add(name)
                # written at once: the tracing runs in a child that mutmut ends with os._exit (no atexit)
                out.write_text(json.dumps(sorted(seen)))
        init(self, args, *a, **kw)  # type: ignore[arg-type]

    subprocess.Popen.__init__ = noting  # type: ignore[method-assign]


def children_only_modules() -> None:
    """mutmut stops when its tracing saw no test call the module; for a module that runs only inside ``serve``
    (the ASGI front door, the SOAP service) that is every module's normal case. A placeholder entry lets the
    stats pass finish; run.py's curate then gives each function the tests that start a Python child."""
    from mutmut.state import state

    for cls in (isolation.ForkRunner, isolation.ForkServerRunner):
        original = cls.collect_stats

        def collect_stats(self: object, tests: object, _original: object = original) -> int:
            code = _original(self, tests)  # type: ignore[operator]
            if code == 0 and not any(state().tests_by_mangled_function_name.values()):
                state().tests_by_mangled_function_name["<traced none: children only>"] = set(state().duration_by_test)
            return int(code)

        cls.collect_stats = collect_stats  # type: ignore[method-assign]


def stats() -> None:
    def stop(*_: object, **__: object) -> None:
        print("mutants generated and tests traced; stopping before the mutant run", flush=True)
        sys.exit(0)

    record_children(Path("mutants/mutmut-children.json").resolve())
    children_only_modules()

    M._check_test_to_mutant_associations = stop
    sys.argv = ["mutmut", "run", "--max-children", "1"]
    M.cli()


def plain_tracebacks() -> None:
    """structlog's rich tracebacks read and highlight the source of every frame; in a mutated module (megabytes:
    every mutant is a copy of its function) one logged retry then took ~10 s, and tests ran into their timeout
    (false kills). The forked children inherit this; it changes log rendering only."""
    import structlog.dev

    if hasattr(structlog.dev, "RichTracebackFormatter"):
        structlog.dev.RichTracebackFormatter.__call__ = lambda self, sio, exc_info: structlog.dev.plain_traceback(
            sio, exc_info
        )


#: Exit code for a test run that raised instead of returning (mutmut maps it to "suspicious", not caught).
CRASHED = 35


def crashes_are_not_timeouts(log_file: Path) -> None:
    """mutmut's fork-server child turns an exception from the test runner into exit status 255, which its
    table calls a *timeout*, and a timeout counts as caught. A crash of the harness says nothing about the
    mutant: record its traceback and exit ``CRASHED`` ("suspicious") so it is neither caught nor hidden."""
    import io
    import traceback

    original = harness.PytestRunner.run_tests

    def run_tests(self: harness.PytestRunner, *, mutant_name: str | None, tests: list[str]) -> int:
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = captured = io.StringIO()  # mutmut's child writes to /dev/null: keep it
        try:
            return original(self, mutant_name=mutant_name, tests=tests)
        except BaseException as exc:  # reported, then a distinct exit status
            if isinstance(exc, SystemExit) and isinstance(exc.code, int):
                return exc.code
            with log_file.open("a") as f:
                f.write(f"== {mutant_name}\n{captured.getvalue()[-4000:]}\n{traceback.format_exc()}\n")
            return CRASHED
        finally:
            sys.stdout, sys.stderr = out, err

    harness.PytestRunner.run_tests = run_tests  # type: ignore[method-assign]


def run(order_file: str, children: str) -> None:
    plain_tracebacks()
    crashes_are_not_timeouts(Path("mutants/mutmut-crashes.log").resolve())
    names = json.loads(Path(order_file).read_text())["names"]
    position = {n: i for i, n in enumerate(names)}
    durations = json.loads(Path("mutants/mutmut-stats.json").read_text())["duration_by_test"]
    regular = harness.PytestRunner._pytest_args_regular_run

    def cheapest_first(self: object, tests: list[str]) -> list[str]:
        return regular(self, sorted(tests, key=lambda t: (durations.get(t, 99.0), t)))

    harness.PytestRunner._pytest_args_regular_run = cheapest_first
    for cls in (isolation.ForkRunner, isolation.ForkServerRunner):
        cls.run_clean_tests = lambda self, tests: 0
    harness.ListAllTestsResult.new_tests = lambda self: set()
    harness.ListAllTestsResult.clear_out_obsolete_test_names = lambda self: None
    M.estimated_worst_case_time = lambda name: position.get(name, 10**9)
    sys.argv = ["mutmut", "run", "--max-children", children, *names]
    M.cli()


def summary(order_file: str) -> None:
    order = json.loads(Path(order_file).read_text())
    listed, texts = set(order["names"]), set(order["string_only"])
    per: dict[str, dict[str, list[int]]] = {}
    for meta in Path("mutants").rglob("*.py.meta"):
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if key in listed:
                name, _, n = key.rpartition("__mutmut_")
                verdict = status_by_exit_code[code] + (" (string only)" if key in texts else "")
                per.setdefault(name.rpartition(".")[2], {}).setdefault(verdict, []).append(int(n))
    for function, verdicts in sorted(per.items()):
        print(function, {k: sorted(v) for k, v in sorted(verdicts.items())})
    crashes = Path("mutants/mutmut-crashes.log")
    if crashes.exists():
        n = crashes.read_text().count("\n== ") + crashes.read_text().startswith("== ")
        print(f"{n} test runs crashed (suspicious, not caught): see {crashes}")


if __name__ == "__main__":
    phase, *rest = sys.argv[1:]
    {"stats": stats, "run": run, "summary": summary}[phase](*rest)
