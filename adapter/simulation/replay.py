"""``simulate --rerun``: a recording replayed with the far systems stubbed from it, every checkpoint compared.

The rerun starts an adapter as the ketensimulatie does (fresh store, the mapping files under test) whose ZGW
targets and werkmap point at stubs: one loopback server per origin the recording called, answering each call
with the recorded answer (their URLs moved to the stub's origin, and back when compared). Writes are answered in
the order recorded (a recorded 503 then 201 replays as a retry); a read by its URL. A call the recording never
made gets 404/500 and is named in the comparison. The recorded inbound messages are sent again, one flow at a
time, byte for byte; each flow's checkpoints are recorded as it runs (``adapter.recording``) and compared with
the recording's (``adapter.simulation.recorded``).
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from adapter import recording
from adapter.errors import ConfigError
from adapter.privacy import personal_values_in_xml
from adapter.simulation.config_text import chain_toml
from adapter.simulation.recorded import Flow, FlowRecorder, Recording, compare, path_of, url_key
from adapter.simulation.results import SETTLED, Check, ScenarioResult, shown
from adapter.simulation.scenarios import Scenario, Step
from adapter.simulation.serving import serve_in_thread
from adapter.xmlsafe import Limits

SECRET = "rerun-stub-secret-of-32-bytes-or-more"


class ReplayTransport(httpx.BaseTransport):
    """The far systems of a recording: every call the adapter's clients make is answered from it, in process
    (``adapter.recording.replaying``), so the adapter sees the recorded URLs exactly."""

    def __init__(self, rec: Recording, engine: Any = None) -> None:
        self.rec = rec
        #: the rerun adapter's store: which flow a delivered message is, by the bytes it was sent with
        self.engine = engine
        self._lock = threading.Lock()
        #: the rerun's message id → its recorded flow, and which of that flow's calls were answered already
        self._flows: dict[int, Flow | None] = {}
        self._used: dict[str, set[int]] = {f.name: set() for f in rec.flows}

    def flow_of(self, message_id: int) -> Flow | None:
        """The recorded flow whose inbound message is the one stored as ``message_id`` (found from the store the
        first time, before the run's first call: no race with the post that put it there)."""
        from adapter.store import messages

        if message_id not in self._flows:
            row = messages.get_message(self.engine, message_id) if self.engine is not None else None
            body = row.body if row is not None else None
            self._flows[message_id] = next((f for f in self.rec.flows if f.inbound == body), None)
        return self._flows[message_id]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        key = url_key(str(request.url))
        call = self._answer_for(request.method, key)
        if call is None:
            status = 404 if request.method == "GET" else 500
            body = {"detail": f"{request.method} {key} is not in the recording"}
            return httpx.Response(status, json=body, request=request)
        return self._response(call, request)

    def _answer_for(self, method: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            mid = recording.current_message()
            flow = self.flow_of(mid) if mid is not None else None
            calls = flow.calls if flow is not None else []
            used = self._used[flow.name] if flow is not None else set()
            if method == "GET":
                same = [(i, c) for i, c in enumerate(calls) if c["method"] == "GET" and url_key(c["url"]) == key]
                for i, c in same:
                    if i not in used:
                        used.add(i)
                        return c
                if same:
                    return same[-1][1]
                # read in another flow of the recording (the zaaktypen, before a cache had them)
                every = [
                    c for f in self.rec.flows for c in f.calls if c["method"] == "GET" and url_key(c["url"]) == key
                ]
                return every[-1] if every else None
            for i, c in enumerate(calls):
                if i not in used and c["method"] == method and path_of(c["url"]) == urlsplit(key).path:
                    used.add(i)
                    return c
            return None

    def _response(self, call: dict[str, Any], request: httpx.Request) -> httpx.Response:
        body = call.get("response")
        media = call.get("content_type") or "application/octet-stream"
        if isinstance(body, dict) and set(body) >= {"bytes", "sha256"} and "json" not in media:
            raw = self.rec.body(body["sha256"])
        elif body is None:
            raw = b""
        elif isinstance(body, str):
            raw = _acknowledging(body, request.content).encode("utf-8")
        else:
            raw = json.dumps(body).encode("utf-8")
        return httpx.Response(call["status"], content=raw, headers={"content-type": media}, request=request)


_REFERENTIE = re.compile(rb"<(?:[\w.-]+:)?referentienummer>([^<]*)</")
_CROSS_REF = re.compile(r"(<(?:[\w.-]+:)?crossRefnummer>)[^<]*(</)")


def _acknowledging(answer: str, request: bytes) -> str:
    """A recorded StUF answer as a StUF receiver gives it to this request: its crossRefnummer is the request's
    referentienummer (a new one per message: the recorded one would be refused as acknowledging another)."""
    m = _REFERENTIE.search(request)
    if m is None or "crossRefnummer" not in answer:
        return answer
    return _CROSS_REF.sub(lambda c: c[1] + m[1].decode("utf-8", "replace") + c[2], answer, count=1)


def _config(rec: Recording, tmp: Path, mappings: Path) -> str:
    """The rerun adapter's config: one worker (calls in the order of the runs), the recording's identity,
    targets, werkmap and loket by their recorded URLs (their calls never leave the process: ``ReplayTransport``)."""
    setup = rec.setup
    head = chain_toml(tmp, mappings, workers=1, backoff_initial=0.05, backoff_max=0.2, max_attempts=setup.max_attempts)
    if setup.koppel_zaak_aan_aanvraag:
        if setup.loket is None:
            raise ConfigError(f"{rec.folder / 'setup.json'}: koppel_zaak_aan_aanvraag without a loket")
        head = head.replace("[delivery]\n", "[delivery]\nkoppel_zaak_aan_aanvraag = true\n", 1)
    parts = [head]
    for kind, systems in (("ontvangers", setup.ontvangers), ("zenders", setup.zenders)):
        for s in systems:
            fields = s.model_dump(exclude_none=True)
            parts.append(f"[[stuf.{kind}]]\n" + "".join(f"{k} = {_text(v)}\n" for k, v in fields.items()))
    for name, target in setup.targets.items():
        if target.kind != "zgw":
            raise ConfigError(f"a rerun stubs ZGW targets, the werkmap and the loket; target {name} is {target.kind!r}")
        urls = target.model_dump(
            include={"zaken_url", "documenten_url", "catalogi_url", "catalogus"}, exclude_none=True
        )
        table = "".join(f"{k} = {_text(v)}\n" for k, v in urls.items())
        parts.append(
            f'[targets.{name}]\nkind = "zgw"\n{table}auth = {{ client_id = "rerun", secret = "{SECRET}" }}\n'
            "timeout = 10\n"
        )
    if setup.werkmap is not None:
        w = setup.werkmap
        parts.append(f"[werkmap]\nbase_url = {_text(w.base_url)}\noin = {_text(w.oin)}\ntimeout = 10\nretries = 0\n")
    if setup.loket is not None:
        lk = setup.loket
        ends = "".join(
            f"{k} = {{ {', '.join(f'{a} = {_text(b)}' for a, b in v.items())} }}\n"
            for k, v in (("zender", lk.zender), ("ontvanger", lk.ontvanger))
        )
        parts.append(f"[loket]\nurl = {_text(lk.url)}\n{ends}timeout = 10\n")
    return "\n".join(parts)


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _post(url: str, flow: Flow) -> httpx.Response:
    path, media = ("/stam/verzoeknotificatie", "application/xml")
    if flow.channel != "stam":
        path, media = ("/soap/stuf-lvo", "text/xml; charset=utf-8")
    return httpx.post(url + path, content=flow.inbound, headers={"Content-Type": media, "SOAPAction": '""'}, timeout=30)


#: what reaches the adapter from outside by a message it can be sent again
REPLAYABLE = ("stuf-lvo", "stam")
WHY_NOT = {
    "advies": "an adviesverzoek we put out starts in our own store (advies aanvragen), not from a message",
    "samenwerken": "arrives by the samenwerken poll, whose calls are not part of a flow: not replayed",
}


def rerun(
    folder: Path,
    *,
    mappings: Path,
    progress: Callable[[str], None],
    timeout: float = 30,
) -> list[ScenarioResult]:
    """Every flow of the recording in ``folder`` replayed and compared; one result per flow.

    The inbound messages go in as they arrived (by the recording adapter's message order), each once its
    predecessor has had its first delivery run, so an aanvulling that waited for its aanvraag waits again; the
    comparison follows when every flow has settled."""
    from adapter.app import build_app
    from adapter.config import load_settings
    from adapter.services import open_services
    from adapter.store.db import upgrade

    rec = Recording.read(folder)
    far = ReplayTransport(rec)
    with tempfile.TemporaryDirectory(prefix="rerun-") as tmp, recording.replaying(far):
        config = Path(tmp) / "config.toml"
        config.write_text(_config(rec, Path(tmp), mappings), "utf-8")
        settings = load_settings(config)
        services = open_services(settings)
        far.engine = services.engine
        stop_adapter: Callable[[], None] | None = None
        try:
            upgrade(services.engine)
            assert services.outbox is not None
            services.outbox.mappings.get()  # a broken mapping file: one line, before any flow
            recorder = FlowRecorder(services.engine, files_dir=settings.store.files_dir)
            with recording.installed(recorder):
                services.outbox.start()
                url, stop_adapter = serve_in_thread(build_app(services))
                return _replay(rec, far, recorder, url, services, progress, timeout)
        finally:
            if stop_adapter is not None:
                stop_adapter()
            services.close()


def _replay(
    rec: Recording,
    far: ReplayTransport,
    recorder: FlowRecorder,
    url: str,
    services: Any,
    progress: Callable[[str], None],
    timeout: float,
) -> list[ScenarioResult]:
    results = {flow.name: ScenarioResult(_scenario(rec, flow)) for flow in rec.flows}
    sent: dict[str, int | None] = {}
    started: dict[str, float] = {}
    for flow in sorted(rec.flows, key=lambda f: (f.result.get("message_id") or 0, f.name)):
        result = results[flow.name]
        progress(f"{rec.folder.name}/{flow.name}: {flow.message_type}")
        if flow.channel not in REPLAYABLE:
            result.skipped = WHY_NOT.get(flow.channel, f"{flow.channel} flows are not replayed")
            progress(f"{rec.folder.name}/{flow.name}: skipped ({result.skipped})")
            continue
        started[flow.name] = time.monotonic()
        try:
            r = _post(url, flow)
        except httpx.HTTPError as exc:
            result.error = f"the adapter did not answer: {type(exc).__name__}"
            continue
        result.exchanges.append((1, "sent (recorded inbound)", flow.inbound.decode("utf-8", "replace")))
        result.exchanges.append((1, f"answer (HTTP {r.status_code})", r.text))
        mid = sent[flow.name] = _message_id(services, flow)
        if mid is not None:
            _wait(timeout, partial(_has_run, services, recorder, mid, ()))
    for flow in rec.flows:
        if flow.name not in sent:
            continue
        mid = sent[flow.name]
        if mid is not None:
            settled = (flow.result.get("state"), *SETTLED)
            _wait(timeout, partial(_has_run, services, recorder, mid, settled))
        new = recorder.snapshot(mid) if mid is not None else Flow(flow.name)
        new.name = flow.name
        _compare_into(results[flow.name], rec, flow, new)
        results[flow.name].seconds = time.monotonic() - started[flow.name]
        progress(f"{rec.folder.name}/{flow.name}: {'ok' if results[flow.name].ok else 'DIFFERENT'}")
    return [results[f.name] for f in rec.flows]


def _scenario(rec: Recording, flow: Flow) -> Scenario:
    """A flow as the reports show a scenario: one step, sending the recorded inbound again."""
    return Scenario(
        id=f"{rec.folder.name}.{flow.name}"[-64:],
        description=rec.description or f"rerun of {flow.message_type}",
        steps=[Step(do="send", message="inbound", describe=f"the recorded {flow.message_type}, sent again")],
        source=str(rec.folder / flow.name),
    )


def _has_run(services: Any, recorder: FlowRecorder, mid: int, states: tuple[str | None, ...]) -> bool:
    """The message was refused at the door, or a delivery run of it has ended (in one of ``states``, if any)."""
    from adapter.store import messages

    row = messages.get_message(services.engine, mid)
    state = row.state if row is not None else None
    return state == "rejected" or (mid in recorder.ran and (not states or state in states))


def _wait(timeout: float, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _compare_into(result: ScenarioResult, rec: Recording, flow: Flow, new: Flow) -> None:
    reads = {url_key(c["url"]) for f in rec.flows for c in f.calls if c["method"] == "GET"}
    checked, differences = compare(flow, new, rec.ignore, reads)
    text = result.scenario.steps[0].describe or "rerun"
    sid = result.scenario.id
    # the message's personal values, and those of what the werkmap served (a STAM verzoek), masked in every check
    bodies = [flow.inbound, *(c["response"].encode() for c in flow.calls if isinstance(c.get("response"), str))]
    personal = set().union(*(personal_values_in_xml(b, Limits()) for b in bodies))
    for cp in checked:
        failed = [d for d in differences if d.checkpoint.split(" ")[0].split(".")[0] == cp.split(" ")[0]]
        if not failed:
            result.checks.append(Check(sid, 1, text, f"checkpoint {cp}", "as recorded", "as recorded", True))
    for d in differences:
        name = f"checkpoint {d.checkpoint}" + (f": field {d.field}" if d.field else "")
        result.checks.append(
            Check(sid, 1, text, name, shown(d.recorded, quoted=True), shown(d.rerun, quoted=True), False, personal)
        )


def _message_id(services: Any, flow: Flow) -> int | None:
    """The message the adapter stored for the resent inbound: the one with exactly these bytes (None when it
    stored none; a duplicate it recognised is the earlier one, as the adapter sees it)."""
    from sqlalchemy import select

    from adapter.store.db import reading
    from adapter.store.tables import messages

    q = select(messages.c.id).where(messages.c.body == flow.inbound).order_by(messages.c.id.desc()).limit(1)
    with reading(services.engine) as conn:
        return conn.execute(q).scalar()
