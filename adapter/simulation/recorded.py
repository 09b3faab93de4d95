"""Recordings of live flows (``serve --record``, ``simulate --record``) and their comparison on a rerun.

A recording is a folder a tester can read and keep in git::

    NAME/recording.toml        description, the ignore rules (edit these), the flows in order
    NAME/setup.json            what a rerun needs of the recording adapter's config (no secrets)
    NAME/001-TYPE/inbound.xml  the message as received          answer.xml    the answer sent
                  verzoek.json the canonical Verzoek             opdracht.json the mapped Opdracht
                  calls.json   every outbound call and its answer result.json  the message's end state

Every checkpoint is compared on a rerun field by field; a field is named by its dotted path
(``opdracht.zaken.0.omschrijving``, ``calls.3.request.omschrijving``, ``answer.Envelope.Body.Bv03Bericht…``). An
ignore rule is a glob over those paths (``*`` matches anything, dots included), so ``calls.*.request.startdatum``
skips that field in every call.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine

from adapter.config import Settings
from adapter.errors import ConfigError
from adapter.logs import get_logger
from adapter.privacy import masked_field, model_view
from adapter.simulation.probes import ABSENT
from adapter.simulation.results import SETTLED
from adapter.xmlsafe import XmlRejected, parse

#: What differs between two runs of the same flow by nature, not by a change: clock times, the StUF
#: referentienummers and tijdstippen of the answer, and the koppeling's message to the loket. A tester adds
#: their own in recording.toml.
DEFAULT_IGNORE = (
    "answer.*.tijdstipBericht",
    "answer.*.referentienummer",
    "calls.*.request.registratiedatum",
    "calls.*.request.datumStatusGezet",
    "calls.*.request.creatiedatum",
    "calls.*.request.ontvangstdatum",
    "calls.*.request.*referentienummer*",
    "calls.*.request.*tijdstipBericht*",
    "result.received_at",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _System(_Strict):
    organisatie: str
    applicatie: str
    administratie: str | None = None


class _Target(_Strict):
    kind: str
    zaken_url: str | None = None
    documenten_url: str | None = None
    catalogi_url: str | None = None
    catalogus: str | None = None
    url: str | None = None


class _Werkmap(_Strict):
    base_url: str
    oin: str


class _Loket(_Strict):
    url: str
    zender: dict[str, str]
    ontvanger: dict[str, str]


class Setup(_Strict):
    """setup.json: what a rerun needs of the recording adapter's config (written by ``setup_of``)."""

    ontvangers: list[_System] = Field(..., min_length=1)
    zenders: list[_System] = Field(default_factory=list)
    targets: dict[str, _Target] = Field(default_factory=dict)
    werkmap: _Werkmap | None = None
    loket: _Loket | None = None
    koppel_zaak_aan_aanvraag: bool = False
    max_attempts: int = Field(10, ge=1, le=1000)


class _Call(BaseModel):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    url: str
    status: int
    request: Any = None
    response: Any = None
    content_type: str = ""


class _Result(BaseModel):
    channel: str
    message_type: str
    state: str
    message_id: int | None = None
    outcome: str | None = None
    error: str | None = None


_SHAPES: dict[str, TypeAdapter[Any]] = {"calls": TypeAdapter(list[_Call]), "result": TypeAdapter(_Result)}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"


log = get_logger("adapter.simulation.recorded")


def _write_whole(path: Path, data: bytes) -> None:
    """Write through a sibling ``.part`` file and rename it into place (atomic on one filesystem)."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)


_FOLDER = re.compile(r"^\d{3,}-[A-Za-z0-9_.-]+$")


@dataclass
class Flow:
    """One message's way through the adapter."""

    name: str
    channel: str = ""
    message_type: str = ""
    inbound: bytes = b""
    answer: str = ""
    verzoek: Any = None
    opdracht: Any = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        """Each file whole or not at all, ``result.json`` last: whoever reads the folder while the adapter runs
        (a tester waiting for a flow's outcome) never sees a half-written file or a result before its calls."""
        folder.mkdir(parents=True, exist_ok=True)
        _write_whole(folder / "inbound.xml", self.inbound)
        _write_whole(folder / "answer.xml", self.answer.encode("utf-8"))
        for name in ("verzoek", "opdracht", "calls", "result"):
            text = json.dumps(getattr(self, name), indent=2, ensure_ascii=False, sort_keys=True)
            _write_whole(folder / f"{name}.json", (text + "\n").encode("utf-8"))

    @classmethod
    def read(cls, folder: Path) -> Flow:
        def data(name: str) -> Any:
            path = folder / f"{name}.json"
            try:
                value = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{path}: {exc}") from None
            if name in _SHAPES:
                try:
                    _SHAPES[name].validate_python(value)
                except ValidationError as exc:
                    raise ConfigError(f"{path}: {_first_error(exc)}") from None
            return value

        try:
            inbound, answer = (folder / "inbound.xml").read_bytes(), (folder / "answer.xml").read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"{folder}: {exc}") from None
        result = data("result")
        return cls(
            folder.name,
            result.get("channel", ""),
            result.get("message_type", ""),
            inbound,
            answer,
            data("verzoek"),
            data("opdracht"),
            data("calls"),
            result,
        )


@dataclass
class Recording:
    folder: Path
    description: str
    ignore: list[str]
    flows: list[Flow]
    setup: Setup

    @classmethod
    def read(cls, folder: Path) -> Recording:
        path = folder / "recording.toml"
        try:
            meta = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: {exc} (a recording: serve --record or simulate --record)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not TOML: {exc}") from None
        unknown = set(meta) - {"description", "recorded_at", "ignore", "flows"}
        if unknown:
            raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
        ignore, flows = meta.get("ignore", []), meta.get("flows", [])
        if not (isinstance(ignore, list) and all(isinstance(i, str) for i in ignore)):
            raise ConfigError(f"{path}: ignore must be a list of texts (globs over checkpoint.field paths)")
        if not (isinstance(flows, list) and flows and all(isinstance(f, str) and _FOLDER.match(f) for f in flows)):
            raise ConfigError(f'{path}: flows must list the flow folders (e.g. "001-omvDi01AanbiedenAanvraag")')
        try:
            setup = Setup.model_validate_json((folder / "setup.json").read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"{folder / 'setup.json'}: {exc}") from None
        except ValidationError as exc:
            raise ConfigError(f"{folder / 'setup.json'}: {_first_error(exc)}") from None
        return cls(folder, str(meta.get("description", "")), ignore, [Flow.read(folder / f) for f in flows], setup)

    def body(self, sha256: str) -> bytes:
        """A binary answer's bytes (``bodies/``), as recorded."""
        path = self.folder / "bodies" / f"{sha256}.bin"
        return path.read_bytes() if path.is_file() else b""


def _toml_text(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, as long as nothing outside the BMP is escaped)."""
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: list[str]) -> str:
    return "[\n" + "".join(f"  {_toml_text(v)},\n" for v in values) + "]"


def write_meta(folder: Path, description: str, flows: list[str], ignore: list[str]) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = (
        "# A recording of live flows; rerun and compare: loket-adapter simulate --rerun THIS-FOLDER\n"
        f"description = {_toml_text(description)}\n"
        f'recorded_at = "{when}"\n'
        "# Fields not compared on a rerun: globs over checkpoint.field paths (* matches anything, dots too).\n"
        f"ignore = {_toml_list(ignore)}\n"
        f"flows = {_toml_list(flows)}\n"
    )
    _write_whole(folder / "recording.toml", text.encode("utf-8"))


def setup_of(settings: Settings) -> dict[str, Any]:
    """What a rerun needs of the recording adapter's config: who it is, its ZGW targets and werkmap by their
    URLs. No secret, no certificate: the rerun's far side is a stub that checks neither."""
    targets = {}
    for name, t in settings.targets.items():
        keep = ("kind", "zaken_url", "documenten_url", "catalogi_url", "catalogus", "url")
        targets[name] = {k: t[k] for k in keep if k in t}
    werkmap = {k: settings.werkmap[k] for k in ("base_url", "oin") if k in settings.werkmap} or None
    loket = {k: settings.loket[k] for k in ("url", "zender", "ontvanger") if k in settings.loket} or None
    return {
        "loket": loket,
        "ontvangers": [s.model_dump(exclude_none=True) for s in settings.stuf.ontvangers],
        "zenders": [s.model_dump(exclude_none=True) for s in settings.stuf.zenders],
        "targets": targets,
        "werkmap": werkmap,
        "koppel_zaak_aan_aanvraag": settings.delivery.koppel_zaak_aan_aanvraag,
        "max_attempts": settings.delivery.max_attempts,
    }


def flow_name(name: str, message_type: str) -> str:
    """A flow's folder: its number (three digits or more: a long ``serve --record`` passes 999) and type."""
    return f"{name.split('-', 1)[0]}-{message_type}"


class FlowRecorder:
    """The recorder of ``adapter.recording``: keeps each delivered message's checkpoints, and (with a folder)
    writes its flow there after every run, so the folder always shows the latest state of each flow."""

    def __init__(
        self,
        engine: Engine,
        folder: Path | None = None,
        setup: dict[str, Any] | None = None,
        files_dir: str | None = None,
    ) -> None:
        self.engine = engine
        #: our file store: where a bijlage lies differs per installation and run, so it reads as <files>
        self._files = sorted({files_dir, str(Path(files_dir).resolve())}, key=len, reverse=True) if files_dir else []
        self.folder = folder
        self.setup = setup or {}
        self.flows: dict[int, Flow] = {}
        #: every message's flow folder name, for as long as the recorder runs (a flow no longer held in memory
        #: is read back from its folder when its message is delivered again: a resend)
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()
        #: messages whose (latest) delivery run has ended
        self.ran: set[int] = set()
        self.description = ""
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            _write_whole(folder / "setup.json", (json.dumps(self.setup, indent=2, sort_keys=True) + "\n").encode())

    def _flow(self, message_id: int) -> Flow:
        with self._lock:
            if message_id not in self.flows:
                name = self._names.get(message_id)
                if name is not None and "-" in name and self.folder is not None:
                    self.flows[message_id] = Flow.read(self.folder / name)
                else:
                    self.flows[message_id] = Flow(name or f"{len(self._names) + 1:03d}")
                    self._names[message_id] = self.flows[message_id].name
            return self.flows[message_id]

    def checkpoint(self, message_id: int, name: str, value: Any) -> None:
        if self._files:
            text = json.dumps(value)
            for f in self._files:
                text = text.replace(json.dumps(f)[1:-1], "<files>")
            value = json.loads(text)
        setattr(self._flow(message_id), name, value)

    def call(self, message_id: int, call: dict[str, Any]) -> None:
        flow = self._flow(message_id)
        raw = call.pop("raw", None)
        if raw is not None and self.folder is not None:  # a binary answer: a rerun answers with these bytes
            body = self.folder / "bodies" / f"{call['response']['sha256']}.bin"
            if not body.exists():
                body.parent.mkdir(exist_ok=True)
                with body.with_suffix(".part").open("wb") as out:
                    shutil.copyfileobj(raw, out)
                body.with_suffix(".part").replace(body)
        flow.calls.append(call)

    def finished(self, message_id: int) -> None:
        flow = self.snapshot(message_id)
        self.ran.add(message_id)
        if self.folder is None or not flow.result:
            return
        with self._lock:
            flow.write(self.folder / flow.name)
            self._names[message_id] = flow.name
            if flow.result.get("state") in SETTLED:
                del self.flows[message_id]  # written whole; a long serve --record holds only what still runs
            names = sorted((n for n in self._names.values() if "-" in n), key=lambda n: int(n.split("-", 1)[0]))
            ignore = self._ignore()
            if ignore is not None:
                write_meta(self.folder, self.description, names, ignore)

    def snapshot(self, message_id: int) -> Flow:
        """The flow of ``message_id`` with what the store holds of it now (the message, its answer, its end)."""
        from adapter.store import messages, outbox

        flow = self._flow(message_id)
        row = messages.get_message(self.engine, message_id)
        if row is None:
            return flow
        delivery = outbox.delivery_of_message(self.engine, message_id)
        d = delivery["delivery"] if delivery else None
        flow.channel, flow.message_type = row.channel, row.message_type
        flow.name = flow_name(flow.name, row.message_type)
        flow.inbound, flow.answer = row.body, row.answer or ""
        flow.result = {
            "message_id": message_id,  # the recording adapter's: the order the messages arrived in
            "channel": row.channel,
            "message_type": row.message_type,
            "state": row.state,
            "outcome": d.outcome if d is not None else None,
            "error": d.last_error if d is not None else None,
        }
        return flow

    def _ignore(self) -> list[str] | None:
        """The ignore rules: those a tester already wrote into this folder's recording.toml, else the defaults;
        None when the tester's edit does not parse (the file is left as it is, never overwritten with defaults)."""
        assert self.folder is not None
        path = self.folder / "recording.toml"
        if not path.exists():
            return list(DEFAULT_IGNORE)
        try:
            ignore = tomllib.loads(path.read_text("utf-8")).get("ignore")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            log.warning("recording.toml does not parse: left as it is, the new flow is not listed", error=str(exc))
            return None
        return [str(i) for i in ignore] if isinstance(ignore, list) else list(DEFAULT_IGNORE)


# -- comparison ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    flow: str
    checkpoint: str
    field: str
    recorded: Any
    rerun: Any

    def line(self) -> str:
        where = f"field {self.field}" if self.field else "as a whole"
        name = f"{self.checkpoint} {self.field}"
        return (
            f"flow {self.flow}: checkpoint {self.checkpoint}: {where}: recorded "
            f"{masked_field(name, _short(self.recorded))}, rerun {masked_field(name, _short(self.rerun))}"
        )


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        value = model_view(value, masked=True)  # a whole object: its personal fields masked
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def diff(recorded: Any, rerun: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, recorded, rerun) of every leaf that differs."""
    if isinstance(recorded, dict) and isinstance(rerun, dict):
        out = []
        for k in sorted(set(recorded) | set(rerun), key=str):
            out += diff(recorded.get(k, ABSENT), rerun.get(k, ABSENT), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(recorded, list) and isinstance(rerun, list):
        out = []
        for i in range(max(len(recorded), len(rerun))):
            a = recorded[i] if i < len(recorded) else ABSENT
            b = rerun[i] if i < len(rerun) else ABSENT
            out += diff(a, b, f"{path}.{i}" if path else str(i))
        return out
    return [] if recorded == rerun else [(path, recorded, rerun)]


def xml_fields(text: str | bytes) -> dict[str, str]:
    """An XML document as {dotted path of local names: text}; repeated siblings numbered, attributes as @name."""
    try:
        root = parse(text.encode("utf-8") if isinstance(text, str) else text)
    except XmlRejected:
        return {"": text.decode("utf-8", "replace") if isinstance(text, bytes) else text}
    out: dict[str, str] = {}

    def walk(el: etree._Element, path: str) -> None:
        for name, value in el.attrib.items():
            out[f"{path}.@{etree.QName(name).localname}"] = value
        children = [c for c in el if isinstance(c.tag, str)]
        if not children:
            out[path] = (el.text or "").strip()
        names = [etree.QName(c).localname for c in children]
        seen: dict[str, int] = {}
        for child, name in zip(children, names, strict=True):
            n = seen[name] = seen.get(name, -1) + 1
            walk(child, f"{path}.{name}" + (f".{n}" if names.count(name) > 1 else ""))

    walk(root, etree.QName(root).localname)
    return out


def ignored(path: str, rules: list[str]) -> bool:
    return any(fnmatchcase(path, rule) for rule in rules)


def url_key(url: str) -> str:
    """A call's URL as compared and matched: percent-decoded, so a URL in its query reads as written."""
    return unquote(url)


def path_of(url: str) -> str:
    return urlsplit(url).path


def compare(
    recorded: Flow, rerun: Flow, rules: list[str], reads: set[str] | None = None
) -> tuple[list[str], list[Difference]]:
    """(the checkpoints compared, every difference not ignored) of one flow. ``reads``: every URL the recording
    read in any flow (what another flow read is no change when a cache made this flow read it again)."""
    found: list[tuple[str, str, str, Any, Any]] = []  # (checkpoint, ignore key, field, recorded, rerun)

    def add(checkpoint: str, a: Any, b: Any) -> None:
        for path, x, y in diff(a, b):
            found.append((checkpoint, f"{checkpoint}.{path}" if path else checkpoint, path, x, y))

    add("inbound", xml_fields(recorded.inbound), xml_fields(rerun.inbound))
    add("answer", xml_fields(recorded.answer), xml_fields(rerun.answer))
    add("verzoek", recorded.verzoek, rerun.verzoek)
    add("opdracht", recorded.opdracht, rerun.opdracht)
    keep = ("state", "outcome", "error")
    add("result", {k: recorded.result.get(k) for k in keep}, {k: rerun.result.get(k) for k in keep})
    found += _compare_calls(recorded.calls, rerun.calls, reads or set())
    out: list[Difference] = []
    for cp, key, f, a, b in found:
        d = Difference(recorded.name, cp, f, a, b)
        if not ignored(key, rules) and d not in out:  # a read repeated by every retry: named once
            out.append(d)
    out = _fold_not_made(out)
    checked = ["inbound", "answer", "verzoek", "opdracht", f"calls ({len(recorded.calls)})", "result"]
    return checked, out


def _comparable(body: Any) -> Any:
    """A call's body as compared: an XML text (a StUF message to the loket) element by element, so an ignore rule
    such as ``calls.*.request.*tijdstipBericht*`` reaches into it; anything else as recorded."""
    if isinstance(body, str) and body.lstrip().startswith("<"):
        return xml_fields(body)
    return body


def _fold_not_made(found: list[Difference]) -> list[Difference]:
    """After the first recorded write the rerun did not make, the rest follow from it: one line says how many."""
    missing = [d for d in found if d.rerun == "not made"]
    if len(missing) <= 1:
        return found
    rest = missing[1:]
    last = Difference(missing[0].flow, "calls", "", f"{len(rest)} later writes", "not made")
    return [d for d in found if d not in rest] + [last]


def _call(c: dict[str, Any]) -> str:
    return f"{c['method']} {path_of(c['url'])}"


def _compare_calls(
    recorded: list[dict[str, Any]], rerun: list[dict[str, Any]], reads: set[str]
) -> list[tuple[str, str, str, Any, Any]]:
    """Writes (every method but GET) in order, each with its body; a GET only when the recording never made
    it (reads the recording made but the rerun did not are a cache's doing, not a change)."""
    out: list[tuple[str, str, str, Any, Any]] = []
    writes = [(i, c) for i, c in enumerate(recorded) if c["method"] != "GET"]
    made = [c for c in rerun if c["method"] != "GET"]
    for n in range(max(len(writes), len(made))):
        if n >= len(writes):
            out.append(("calls", "calls", "", "not made", _call(made[n])))
            continue
        i, c = writes[n]
        name = f"calls.{i} ({_call(c)})"
        if n >= len(made) or _call(c) != _call(made[n]):
            out.append((name, f"calls.{i}", "", _call(c), _call(made[n]) if n < len(made) else "not made"))
            continue
        was = {"request": _comparable(c["request"]), "status": c["status"]}
        now = {"request": _comparable(made[n]["request"]), "status": made[n]["status"]}
        out += [(name, f"calls.{i}.{path}", path, a, b) for path, a, b in diff(was, now)]
    read = reads | {url_key(c["url"]) for c in recorded if c["method"] == "GET"}
    for new in rerun:
        if new["method"] == "GET" and url_key(new["url"]) not in read:
            out.append(("calls", "calls", "", "not made", f"GET {url_key(new['url'])}"))
    return out
