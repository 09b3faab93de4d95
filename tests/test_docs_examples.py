"""Every example of ``docs/mappings.md`` runs, and ``config.example.toml`` shows every setting (issue 7, item 10).

The doc marks each example with an HTML comment right before it, ``<!-- test: KIND ARGS -->``:

- ``file mappings/NAME.toml [broken]`` (a TOML block): a complete mapping file. It loads and passes the
  offline check, unless ``broken`` (then a ``run`` example shows what the check says about it).
- ``fragment NAME`` (a TOML block): merged into ``mappings/voorbeeldstad.toml`` (its tables replace the
  example's tables of the same name); the result loads and passes the offline check.
- ``run [mappings/NAME.toml]`` (a console block): ``$ .venv/bin/loket-adapter …`` lines, each followed by
  its expected output (stderr, then stdout; ``…`` stands for any lines), run through the CLI against the
  fake ZGW with that one mapping file (or a copy of ``mappings/``). Mapping paths and the fake's URLs are
  shortened as the doc shows them. Exit status 1 exactly when an ``error:`` line is expected.
- ``zaken FILE``, ``documenttypen FILE``, ``templates FIXTURE MAPPING``, ``soorten CHANNEL`` (a table):
  recomputed from the code and compared cell by cell.

An unmarked block fails the test, so a new example cannot go untested.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from adapter.cli import main
from adapter.config import (
    DeliverySettings,
    InboundSettings,
    JobSettings,
    PostboxSettings,
    PostbusSettings,
    RetentionSettings,
    ServerProxySettings,
    ServerSettings,
    ServerTlsSettings,
    Settings,
    StoreSettings,
    SystemSettings,
)
from adapter.loket.lvo import INCOMING
from adapter.loket.lvo_client import LoketOptions, LoketSysteem
from adapter.loket.lvo_parse import parse_verzoek
from adapter.loket.samenwerken import SamenwerkenOptions
from adapter.loket.stam import DOEL_SOORT
from adapter.loket.stam_parse import read_stam_verzoek, with_pdf
from adapter.loket.werkmap import WerkmapOptions
from adapter.mapping.check import SAMPLE, check_offline
from adapter.mapping.engine import DEFAULTS, build_opdracht, extract_xpaths, informatieobjecttype_from, render
from adapter.mapping.loader import XPATH_NS, LoadedMapping, load_file
from adapter.mapping.schema import MirrorRegel, OverdrachtRegel, ProfielRegels, Route, Triage, ZaaktypeRegel
from adapter.model import Activiteit, Soort, Verzoek
from adapter.targets.stuf_zkn.options import StufSysteem, StufZknOptions
from adapter.targets.zgw.options import ApiAuth, ZgwOptions
from adapter.validation import message_of
from adapter.xmlsafe import Limits, parse
from tests.conftest import PG_URL, ROOT, drop_database, free_port, new_database_url, stop_process, write_config
from tests.delivery_env import Zaaksysteem, copy_mappings, delivery_toml, needs_zgw_specs, start_zaaksysteem

DOC = ROOT / "docs" / "mappings.md"
README = ROOT / "README.md"
EXAMPLE_MAPPING = ROOT / "mappings" / "voorbeeldstad.toml"
EXAMPLE_CONFIG = ROOT / "config.example.toml"
OUR_OIN = "00000001002564440000"
#: what the doc shows for the fake ZGW (the URLs of config.example.toml)
SHOWN_BASE = "http://127.0.0.1:8000"
SHOWN_CATALOGUS = f"{SHOWN_BASE}/catalogi/api/v1/catalogussen/00000000-0000-0000-0000-000000000001"
COMMAND = ".venv/bin/loket-adapter "

# -- reading the doc ---------------------------------------------------------------------------------------

_MARKER = re.compile(r"^<!-- test: (.+?) -->$")
_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced block or a table, with the test marker right before it."""

    kind: str  # "toml", "console", … for fences; "table" for tables
    marker: tuple[str, ...]  # the marker's words, () when unmarked
    text: str
    line: int

    @property
    def id(self) -> str:
        return f"line{self.line}-{'-'.join(self.marker[:2]) or self.kind}"


def read_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        prev = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        m = _MARKER.match(prev)
        marker = tuple(m.group(1).split()) if m else ()
        if f := _FENCE.match(lines[i]):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            out.append(Block(f.group(1), marker, "\n".join(lines[i + 1 : end]) + "\n", i + 1))
            i = end + 1
            continue
        if lines[i].startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
            out.append(Block("table", marker, "\n".join(lines[i:end]), i + 1))
            i = end
            continue
        i += 1
    return out


def rows(table: Block) -> list[list[str]]:
    """The body rows of a markdown table, cells stripped (header and separator left out)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.text.splitlines()[2:]]


def code(cell: str) -> str:
    """A cell's text without the backticks around it."""
    return cell[1:-1] if cell.startswith("`") and cell.endswith("`") else cell


BLOCKS = read_blocks(DOC)
FILES = {b.marker[1]: b for b in BLOCKS if b.marker[:1] == ("file",)}
FRAGMENTS = {b.marker[1]: b for b in BLOCKS if b.marker[:1] == ("fragment",)}
RUNS = [b for b in BLOCKS if b.marker[:1] == ("run",)]


def marked(kind: str) -> list[Block]:
    return [b for b in BLOCKS if b.marker[:1] == (kind,)]


def test_every_example_in_the_doc_is_marked_for_a_test() -> None:
    fences = [b for b in BLOCKS if b.kind != "table"]
    assert fences, "no examples found in docs/mappings.md"
    for b in fences:
        assert b.kind in ("toml", "console"), f"docs/mappings.md:{b.line}: ```{b.kind} block: no test knows it"
        allowed = ("file", "fragment") if b.kind == "toml" else ("run",)
        assert b.marker[:1] and b.marker[0] in allowed, (
            f"docs/mappings.md:{b.line}: ```{b.kind} block without <!-- test: {' | '.join(allowed)} … -->"
        )
    for b in BLOCKS:
        if b.kind == "table" and b.marker:
            assert b.marker[0] in ("zaken", "documenttypen", "templates", "soorten"), b.marker
    markers = sum(1 for line in DOC.read_text(encoding="utf-8").splitlines() if _MARKER.match(line.strip()))
    assert markers == sum(1 for b in BLOCKS if b.marker), "a test marker that is not right before its example"
    run_with = {b.marker[1] for b in RUNS if len(b.marker) > 1}
    for name, b in FILES.items():
        if "broken" in b.marker:
            assert name in run_with, f"{name} is marked broken but no run example shows what is wrong with it"
    assert run_with <= set(FILES), f"run examples name mapping files the doc does not show: {run_with - set(FILES)}"


# -- mapping files and fragments ---------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _tables(text: str) -> list[tuple[str, list[str]]]:
    """(table name, its lines) in order; the lines before the first header have the name ""."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if m := _HEADER.match(line):
            out.append((m.group(1).replace(" ", "").replace('"', ""), [line]))
        else:
            out[-1][1].append(line)
    return out


def merged(fragment: str) -> str:
    """The example mapping with the fragment's tables instead of its own tables of those names."""
    names = {name for name, _ in _tables(fragment) if name}
    kept = [
        line
        for name, lines in _tables(EXAMPLE_MAPPING.read_text(encoding="utf-8"))
        if name not in names
        for line in lines
    ]
    return "\n".join(kept) + "\n\n" + fragment


def write_mapping(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(name).name
    path.write_text(text, encoding="utf-8")
    return path


def load_ok(path: Path) -> LoadedMapping:
    """Loads with no problem, and the offline check finds no error (targets: those the routes name)."""
    loaded, problems = load_file(path)
    assert loaded is not None and not problems, "\n".join(map(str, problems))
    targets = {r.target for r in loaded.mapping.route}
    errors = [p for p in check_offline(loaded, targets) if p.severity == "error"]
    assert not errors, "\n".join(map(str, errors))
    return loaded


def mapping(ref: str, tmp_path: Path) -> LoadedMapping:
    """A mapping the doc names: ``mappings/NAME.toml`` (shown in the doc, else the repository's) or
    ``fragment:NAME`` (merged into the example)."""
    if ref.startswith("fragment:"):
        return load_ok(write_mapping(tmp_path / "f", "voorbeeldstad.toml", merged(FRAGMENTS[ref[9:]].text)))
    if ref in FILES:
        return load_ok(write_mapping(tmp_path / "m", ref, FILES[ref].text))
    return load_ok(ROOT / ref)


@pytest.mark.parametrize("name", sorted(n for n, b in FILES.items() if "broken" not in b.marker))
def test_mapping_file_examples_load_and_pass_the_offline_check(name: str, tmp_path: Path) -> None:
    loaded = load_ok(write_mapping(tmp_path, name, FILES[name].text))
    assert not check_offline(loaded, {r.target for r in loaded.mapping.route}), "the example has warnings"


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_fragment_examples_merged_into_the_example_mapping_load(name: str, tmp_path: Path) -> None:
    text = merged(FRAGMENTS[name].text)
    loaded = load_ok(write_mapping(tmp_path, "voorbeeldstad.toml", text))
    assert _within(tomllib.loads(FRAGMENTS[name].text), tomllib.loads(text)), "the fragment is not in force"
    assert loaded.mapping.route


def _within(part: Any, whole: Any) -> bool:
    """Every table and value of ``part`` is in ``whole`` as written (arrays of tables whole)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _within(v, whole[k]) for k, v in part.items())
    return bool(part == whole)


# -- tables recomputed from the code ------------------------------------------------------------------------


def test_soorten_tables_are_the_code_s() -> None:
    tables = {b.marker[1]: {code(r[0]): code(r[1]) for r in rows(b)} for b in marked("soorten")}
    assert tables["stuf-lvo"] == {name: b.soort for name, b in INCOMING.items()}
    assert tables["stam"] == {doel: soort.value for doel, soort in DOEL_SOORT.items()}
    for soort in [*tables["stuf-lvo"].values(), *tables["stam"].values()]:
        Soort(soort)


def test_zaken_tables_are_what_the_engine_makes(tmp_path: Path) -> None:
    tables = marked("zaken")
    assert tables
    for table in tables:
        m = mapping(table.marker[1], tmp_path)
        for soort, type_, activiteiten, zaken in rows(table):
            verzoek = replace(
                SAMPLE,
                soort=Soort(soort),
                type=type_,
                activiteiten=tuple(Activiteit(c.strip()) for c in activiteiten.split(",")),
            )
            made = build_opdracht([m], verzoek).zaken
            got = ", ".join(z.zaaktype + (" (triage)" if z.triage else "") for z in made)
            assert got == zaken, f"docs/mappings.md:{table.line}: {soort}/{type_}/{activiteiten}: {got}"
            ids = [z.profiel.zaak_identificatie for z in made]
            assert len(set(ids)) == len(ids), f"two zaken of one verzoek under one identificatie: {ids}"


def test_documenttypen_tables_follow_informatieobjecttype_from(tmp_path: Path) -> None:
    tables = marked("documenttypen")
    assert tables
    for table in tables:
        m = mapping(table.marker[1], tmp_path)
        for profile, documenttype, iot, source in rows(table):
            got, came_from = informatieobjecttype_from(
                m, None if profile == "(none)" else profile, None if documenttype == "(none)" else documenttype
            )
            assert (got, ".".join(came_from)) == (iot, code(source)), f"docs/mappings.md:{table.line}: {profile}"


def verzoek_of(fixture: Path) -> Verzoek:
    """The verzoek a fixture becomes, read as ``mappings preview`` reads it."""
    message = message_of(parse(fixture.read_bytes(), Limits()))
    if message.tag.endswith("}verzoek"):
        return with_pdf(read_stam_verzoek(message, {OUR_OIN}).verzoek)
    return parse_verzoek(message, OUR_OIN)


def test_template_tables_render_as_shown(tmp_path: Path) -> None:
    tables = marked("templates")
    assert len(tables) >= 2
    for table in tables:
        verzoek = verzoek_of(ROOT / table.marker[1])
        m = mapping(table.marker[2], tmp_path)
        extra = extract_xpaths(m, verzoek)
        for template, expected in rows(table):
            assert render(code(template), verzoek, extra) == expected, f"docs/mappings.md:{table.line}: {template}"


# -- every key, every verzoek field, every prefix ----------------------------------------------------------


def _every_key_tables() -> dict[str, Block]:
    """The tables of the "Every key" section, by the heading above each."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Every key\n", 1)[1].split("\n## ", 1)[0]
    start = text.index(section)
    first_line = text[:start].count("\n") + 1
    out: dict[str, Block] = {}
    heading = ""
    for b in BLOCKS:
        if b.kind != "table" or not first_line <= b.line <= first_line + section.count("\n"):
            continue
        above = text.splitlines()[: b.line - 1]
        heading = next(line for line in reversed(above) if line.startswith("### "))
        out[heading] = b
    return out


def _default_text(value: Any) -> str | None:
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, str) and value:
        return json.dumps(value, ensure_ascii=False)
    return None


@pytest.mark.parametrize(
    ("heading", "model"),
    [
        ("`[[route]]`", Route),
        ("`[defaults]` and `[profiles.NAME]`", ProfielRegels),
        ("`[[zaaktypen]]`", ZaaktypeRegel),
        ("`[triage]`", Triage),
        ("`[[overdragen]]`", OverdrachtRegel),
        ("`[[mirror]]`", MirrorRegel),
    ],
)
def test_every_key_of_the_mapping_schema_is_in_the_reference(heading: str, model: type[BaseModel]) -> None:
    table = next(b for h, b in _every_key_tables().items() if heading in h)
    documented = {code(r[0]): r for r in rows(table)}
    assert set(documented) == set(model.model_fields), f"docs/mappings.md:{table.line}"
    for key, info in model.model_fields.items():
        shown = _default_text(getattr(DEFAULTS, key) if model is ProfielRegels else info.default)
        if shown is not None:
            assert shown in documented[key][2], f"docs/mappings.md:{table.line}: {key}: default {shown}"


def test_values_xpath_and_every_table_of_a_mapping_file_are_in_the_reference() -> None:
    from adapter.mapping.schema import MappingFile, Waarden

    text = DOC.read_text(encoding="utf-8")
    headings = " ".join(_every_key_tables())
    for name in MappingFile.model_fields:
        assert f"[{name}" in headings or f"[[{name}]]" in headings, name
    for name in Waarden.model_fields:
        assert f"`[values.{name}]`" in text, name


def test_every_verzoek_field_is_listed_and_every_xpath_prefix_is_the_loader_s() -> None:
    carries = next(b for b in BLOCKS if b.kind == "table" and b.text.startswith("| field | StUF-LVO | STAM |"))
    assert [code(r[0]) for r in rows(carries)] == [f.name for f in fields(Verzoek)]
    prefixes = next(b for b in BLOCKS if b.kind == "table" and b.text.startswith("| prefix | namespace |"))
    shown = {code(r[0]): code(r[1].split(" (")[0]) for r in rows(prefixes)}
    assert shown == XPATH_NS


# -- the commands, run against the fake ZGW ---------------------------------------------------------------


@pytest.fixture(scope="module")
def zs() -> Iterator[Zaaksysteem]:
    z = start_zaaksysteem()
    yield z
    z.stop()


@dataclass
class Cli:
    """``loket-adapter`` with a configuration whose target is the fake ZGW and whose mappings are ``folder``."""

    config: Path
    folder: Path
    zs: Zaaksysteem

    @classmethod
    def make(cls, tmp_path: Path, zs: Zaaksysteem, mapping_file: str | None) -> Cli:
        if mapping_file is None:
            folder = copy_mappings(tmp_path)
        else:
            folder = tmp_path / "mappings"
            write_mapping(folder, mapping_file, FILES[mapping_file].text)
        toml = delivery_toml(zs, folder)
        return cls(write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'a.db'}", 8999, toml), folder, zs)

    def run(self, command: str) -> tuple[int, list[str]]:
        """Exit status, and the lines written (stderr, then stdout) as the doc shows them."""
        assert command.startswith(COMMAND), command
        result = CliRunner().invoke(main, ["--config", str(self.config), *shlex.split(command[len(COMMAND) :])])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        text = result.stderr + result.stdout
        catalogus = self.zs.fake.catalogus_url("catalogussen")  # type: ignore[attr-defined]
        for real, shown in (
            (str(self.folder), "mappings"),
            (catalogus, SHOWN_CATALOGUS),
            (self.zs.base_url, SHOWN_BASE),
        ):
            text = text.replace(real, shown)
        return result.exit_code, text.splitlines()


def _fits(expected: list[str], got: list[str]) -> bool:
    """``got`` line by line, where an expected ``…`` stands for any number of lines."""
    if not expected:
        return not got
    if expected[0] == "…":
        return any(_fits(expected[1:], got[i:]) for i in range(len(got) + 1))
    return bool(got) and got[0] == expected[0] and _fits(expected[1:], got[1:])


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            assert out, f"docs/mappings.md:{block.line}: output before the first $ command"
            out[-1][1].append(line)
    return out


@needs_zgw_specs
@pytest.mark.parametrize("block", RUNS, ids=[b.id for b in RUNS])
def test_command_examples_print_what_the_doc_shows(
    block: Block, tmp_path: Path, zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the doc's relative paths (fixtures/…) are relative to the checkout
    cli = Cli.make(tmp_path, zs, block.marker[1] if len(block.marker) > 1 else None)
    before = len(zs.fake.requests)  # type: ignore[attr-defined]
    for command, expected in _commands(block):
        status, got = cli.run(command)
        shown = "\n".join(got)
        assert _fits(expected, got), f"docs/mappings.md:{block.line}: {command}\n--- got:\n{shown}"
        assert status == (1 if any(e.startswith("error:") for e in expected) else 0), f"{command}: exit {status}"
        if "--online" not in command:
            assert len(zs.fake.requests) == before, f"{command} called the zaaksysteem"  # type: ignore[attr-defined]


def _readme_commands(prefix: str) -> list[str]:
    """The README's shell commands that start with ``.venv/bin/loket-adapter PREFIX``, without comments."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith(COMMAND + prefix):
                found.append(line.split("  #")[0].strip())
    return found


@needs_zgw_specs
def test_the_readme_mappings_commands_run(tmp_path: Path, zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch) -> None:
    """README "Mappings": check, check --online and preview of both example files, against the example
    mapping and the fake ZGW."""
    monkeypatch.chdir(ROOT)
    commands = _readme_commands("mappings ")
    assert len(commands) >= 4, commands
    cli = Cli.make(tmp_path, zs, None)
    for command in commands:
        status, got = cli.run(command)
        assert status == 0, f"{command}:\n" + "\n".join(got)
        if " preview " in command:
            assert re.match(r"verzoek \d+ \(aanvraag\) → target zaaksysteem \(zgw\)$", got[0]), got[:3]
            assert any(line.startswith("POST ") for line in got)
        else:
            assert got[-1].startswith("mappings: ok"), got


# -- config.example.toml ------------------------------------------------------------------------------------

_SETTING = re.compile(r"^#\s*(\[.*\]|[A-Za-z_][A-Za-z0-9_]*\s*=.*)$")


def uncommented_example() -> dict[str, Any]:
    """config.example.toml with every commented-out setting and table switched on."""
    lines = [
        _SETTING.sub(r"\1", line) if _SETTING.match(line) else line
        for line in EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    ]
    return tomllib.loads("\n".join(lines))


#: (where in the file, the model of that table)
SETTING_TABLES: list[tuple[tuple[str | int, ...], type[BaseModel]]] = [
    (("server",), ServerSettings),
    (("server", "tls"), ServerTlsSettings),
    (("server", "proxy"), ServerProxySettings),
    (("store",), StoreSettings),
    (("inbound",), InboundSettings),
    (("delivery",), DeliverySettings),
    (("jobs",), JobSettings),
    (("retention",), RetentionSettings),
    (("postbus",), PostbusSettings),
    (("postboxes", "olo"), PostboxSettings),
    (("stuf", "ontvangers", 0), SystemSettings),
    (("targets", "zaaksysteem"), ZgwOptions),
    (("targets", "zaaksysteem", "auth"), ApiAuth),
    (("targets", "zds"), StufZknOptions),
    (("targets", "zds", "zender"), StufSysteem),
    (("werkmap",), WerkmapOptions),
    (("loket",), LoketOptions),
    (("loket", "zender"), LoketSysteem),
    (("samenwerken",), SamenwerkenOptions),
]
#: settings the example sets to something else than the default, each saying so in its comment
NOT_DEFAULT: dict[tuple[str | int, ...], str] = {("store", "url"): "sqlite:///loket-adapter.db"}


def _at(data: Any, where: tuple[str | int, ...]) -> Any:
    for part in where:
        data = data[part]
    return data


def test_the_example_config_shows_every_setting_with_its_default() -> None:
    data = uncommented_example()
    Settings.model_validate(data)  # every table, switched on, is valid as written
    for top in ("server", "store", "stuf", "inbound", "delivery", "jobs", "targets", "loket", "werkmap"):
        assert top in data, f"config.example.toml has no [{top}]"
    assert set(Settings.model_fields) - {"source"} <= set(data)
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    for where, model in SETTING_TABLES:
        table = _at(data, where)
        model.model_validate(table)
        missing = set(model.model_fields) - set(table)
        assert not missing, f"config.example.toml [{'.'.join(map(str, where))}] lacks {sorted(missing)}"
        for key, info in model.model_fields.items():
            if info.is_required() or info.default is None or info.default_factory is not None:
                continue  # no default to show: the example shows a sample value
            if (*where, key) in NOT_DEFAULT:
                assert info.default == NOT_DEFAULT[(*where, key)] and f'"{info.default}"' in text
                continue
            assert table[key] == info.default, f"config.example.toml {'.'.join(map(str, where))}.{key}: not the default"
    assert {z["applicatie"] for z in data["stuf"]["zenders"]} == {"OLO"}


def test_the_example_config_as_it_is_starts_serve(tmp_path: Path) -> None:
    """No far side needed: the commented-out tables stay off; the SQLite file lands beside the config (in
    its var/), wherever serve is started."""
    import shutil

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(EXAMPLE_CONFIG, home / "config.example.toml")
    shutil.copytree(ROOT / "mappings", home / "mappings")
    (home / "var").mkdir()
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "adapter",
        "--config",
        str(home / "config.example.toml"),
        "serve",
        "--port",
        str(port),
    ]
    db_url = new_database_url(tmp_path) if PG_URL else None
    if db_url:
        args += ["--db", db_url]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"serve did not get ready: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        if not db_url:
            assert (home / "var" / "loket-adapter.db").is_file()
            assert not (tmp_path / "var").exists()  # not where it was started
    finally:
        stop_process(proc)
        if db_url:
            drop_database(db_url)
