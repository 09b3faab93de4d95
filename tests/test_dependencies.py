"""Supply chain (issue 8, item 7): every dependency has an upper bound and is pinned in constraints.txt; a
runtime dependency is imported by runtime code, the fakes' packages sit in the ``simulation`` extra, and no
code imports a package it does not declare. CI installs with the constraints file, exactly as README says."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def dist(requirement: str) -> str:
    m = _NAME.match(requirement)
    assert m, requirement
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def declared(group: str | None) -> dict[str, str]:
    reqs = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return {dist(r): r for r in reqs if not r.startswith("loket-adapter")}


def third_party_imports(paths: list[Path]) -> dict[str, set[str]]:
    """Distribution name → modules of ours importing it (any import, also inside a function)."""
    by_module = {k: [re.sub(r"[-_.]+", "-", d).lower() for d in v] for k, v in packages_distributions().items()}
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("adapter", "tests", "__future__"):
                    continue
                for d in by_module.get(top, [f"<unknown:{top}>"]):
                    found.setdefault(d, set()).add(str(path.relative_to(ROOT)))
    return found


RUNTIME_FILES = [p for p in (ROOT / "adapter").rglob("*.py") if "simulation" not in p.parts]
SIMULATION_FILES = list((ROOT / "adapter" / "simulation").rglob("*.py"))


def test_every_dependency_has_an_upper_bound() -> None:
    for group in (None, *PROJECT["optional-dependencies"]):
        for name, req in declared(group).items():
            assert re.search(r"(<|==|~=)", req), f"{name}: no upper bound in {req!r}"


#: Loaded by name rather than imported: SQLAlchemy loads the driver the store URL names.
LOADED_BY_NAME = {"psycopg"}


def test_every_runtime_dependency_is_imported_by_runtime_code() -> None:
    used = set(third_party_imports(RUNTIME_FILES)) | LOADED_BY_NAME
    unused = sorted(set(declared(None)) - set(used))
    assert not unused, f"runtime dependencies no runtime module imports: {unused}"


def test_runtime_code_imports_only_runtime_dependencies() -> None:
    undeclared = {d: sorted(m) for d, m in third_party_imports(RUNTIME_FILES).items() if d not in declared(None)}
    assert not undeclared, f"runtime code imports packages that are not runtime dependencies: {undeclared}"


def test_the_fakes_import_only_what_runtime_and_the_simulation_extra_declare() -> None:
    allowed = set(declared(None)) | set(declared("simulation"))
    undeclared = {d: sorted(m) for d, m in third_party_imports(SIMULATION_FILES).items() if d not in allowed}
    assert not undeclared, undeclared
    unused = set(declared("simulation")) - set(third_party_imports(SIMULATION_FILES))
    assert not unused, f"simulation extra packages nothing in adapter/simulation imports: {sorted(unused)}"


def test_constraints_pin_every_declared_dependency_and_ci_installs_with_them() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not a pin"
            pins[dist(name)] = version
    for group in (None, *PROJECT["optional-dependencies"]):
        missing = sorted(set(declared(group)) - set(pins))
        assert not missing, f"not pinned in constraints.txt: {missing}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = (
        "python3.11 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e '.[dev]' && .venv/bin/pytest"
    )
    assert test_command in readme and ci.count(test_command) == 2
