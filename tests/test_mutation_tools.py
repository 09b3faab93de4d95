"""The mutation ledger and status scripts (tools/mutation/): docs/guarantees.md's "not yet scored" table comes
from them, so a wrong answer there would misreport which code has a mutation result."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools" / "mutation"


def _load(name: str) -> ModuleType:
    """A script of tools/mutation under a name of its own (they import ``mutation_common`` from beside them)."""
    if str(TOOLS) not in sys.path:
        sys.path.append(str(TOOLS))
    spec = importlib.util.spec_from_file_location(f"mutation_{name}", TOOLS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


common, runner, ledger = _load("mutation_common"), _load("run"), _load("ledger")
status = _load("status").status
GUARANTEE_MODULES, function_sources, mutant_function = (
    common.GUARANTEE_MODULES,
    common.function_sources,
    common.mutant_function,
)
numbers, ranges, source_sha = common.numbers, common.ranges, common.source_sha


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


def test_the_runner_writes_its_own_mutmut_table_and_keeps_the_rest(tmp_path: Path) -> None:
    import tomllib

    configure = runner.configure

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.mutmut]\nonly_mutate = ["old"]\n\n[tool.ruff]\nx = 1\n'
    )
    configure(tmp_path, "adapter/store/lease.py", ["tests/a.py::t", "tests/b.py", "tests/a.py::u"])
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["project"] == {"name": "x"} and data["tool"]["ruff"] == {"x": 1}
    assert data["tool"]["mutmut"]["only_mutate"] == ["adapter/store/lease.py"]
    assert data["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests/a.py", "tests/b.py"]


def test_a_selection_entry_names_a_file_a_test_or_all_cases_of_a_test() -> None:
    matching = runner.matching

    known = ["tests/a.py::t[1]", "tests/a.py::t[2]", "tests/a.py::tt", "tests/b.py::u"]
    assert matching("tests/a.py::t", known) == ["tests/a.py::t[1]", "tests/a.py::t[2]"]
    assert matching("tests/a.py", known) == ["tests/a.py::t[1]", "tests/a.py::t[2]", "tests/a.py::tt"]
    assert matching("tests/b.py::u", known) == ["tests/b.py::u"]
    with pytest.raises(SystemExit, match="no collected test matches"):
        matching("tests/c.py", known)


def test_string_only_mutants_are_told_apart_from_the_others(tmp_path: Path) -> None:
    string_only = runner.string_only

    module = tmp_path / "mutants" / "adapter" / "m.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def x_f__mutmut_orig(a):\n    return {'key': a + 1}\n"
        "def x_f__mutmut_1(a):\n    return {'XXkeyXX': a + 1}\n"
        "def x_f__mutmut_2(a):\n    return {'key': a - 1}\n"
    )
    assert string_only(tmp_path, "adapter/m.py") == {"adapter.m.x_f__mutmut_1"}


def test_the_runner_gives_each_function_the_tests_of_its_selection_that_can_see_its_mutants(tmp_path: Path) -> None:
    """Its own selection, else the module default; of those the ones the tracing pass saw call the function,
    those that start a Python child (which runs the mutant unseen by the tracing) and their files' other tests
    (which talk to that child), and the module's ``untraced``
    ones; the traced lists are kept, so a second curate (a restarted run) filters the same way."""
    curate = runner.curate

    (tmp_path / "mutants" / "adapter").mkdir(parents=True)
    meta = {"adapter.m.x_f__mutmut_1": None, "adapter.m.xǁCǁg__mutmut_1": None, "adapter.m.x_h__mutmut_1": None}
    (tmp_path / "mutants" / "adapter" / "m.py.meta").write_text(json.dumps({"exit_code_by_key": meta}))
    names = (
        "tests/a.py::t[1]",
        "tests/a.py::t[2]",
        "tests/b.py::u",
        "tests/b.py::v",
        "tests/c.py::fork",
        "tests/c.py::serve",
        "tests/c.py::talks",  # uses the server its neighbour started (a module-scoped fixture)
    )
    traced = {
        "adapter.m.x_f": ["tests/b.py::u", "tests/a.py::t[1]"],
        "adapter.m.xǁCǁg": ["tests/a.py::t[2]", "tests/b.py::u", "tests/b.py::v"],
    }
    stats = {"duration_by_test": {t: 0.1 for t in names}, "tests_by_mangled_function_name": traced}
    (tmp_path / "mutants" / "mutmut-stats.json").write_text(json.dumps(stats))
    (tmp_path / "mutants" / "mutmut-children.json").write_text(json.dumps(["tests/c.py::serve"]))
    sel = {"*": ["tests/b.py", "tests/c.py"], "C.g": ["tests/a.py::t", "tests/b.py::u"]}
    for _ in range(2):
        curate(tmp_path, "adapter/m.py", sel, ["tests/c.py::fork"])
        tests = json.loads((tmp_path / "mutants" / "mutmut-stats.json").read_text())["tests_by_mangled_function_name"]
        assert tests == {
            "adapter.m.x_f": ["tests/b.py::u", "tests/c.py::fork", "tests/c.py::serve", "tests/c.py::talks"],
            "adapter.m.xǁCǁg": ["tests/a.py::t[2]", "tests/b.py::u"],  # its own selection has no child test
            "adapter.m.x_h": ["tests/c.py::fork", "tests/c.py::serve", "tests/c.py::talks"],  # in no traced test
        }


def test_the_ledger_keeps_verdicts_under_the_functions_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clone = tmp_path / "clone"
    (clone / "adapter").mkdir(parents=True)
    source = "def f(a):\n    return a + 1\n\n\ndef g():\n    return 2\n"
    (clone / "adapter" / "m.py").write_text(source)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run([*git, "add", "adapter/m.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "m"], check=True)
    (clone / "mutants" / "adapter").mkdir(parents=True)
    meta = {"adapter.m.x_f__mutmut_1": 1, "adapter.m.x_f__mutmut_2": 0, "adapter.m.x_g__mutmut_1": None}
    (clone / "mutants" / "adapter" / "m.py.meta").write_text(json.dumps({"exit_code_by_key": meta}))
    monkeypatch.setattr(ledger, "verdicts", lambda: {1: "killed", 0: "survived", None: "not checked"})
    [entry] = ledger.clone_entries(clone)  # g: nothing ran, no entry
    f_source = function_sources(source)["f"]
    assert entry["function"] == "f" and entry["source_sha256"] == source_sha(f_source)
    assert entry["verdicts"] == {"killed": "1", "survived": "2"} and entry["mutants"] == 2
