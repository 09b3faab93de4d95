"""The ketensimulatie's runner: each scenario on its own chain (``adapter.simulation.chains``), its steps
carried out as the loket, the adviseur or the far side would, every expectation checked (``Check``).

The loket side is the runner itself: it posts StUF-LVO messages and STAM verzoeknotificaties, puts verzoeken in
the werkmap, files in the postbox, advice in the loop; the zaaksysteem is read through its side
(``adapter.simulation.sides``). A scenario stops at its first failed step; the others still run.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
from lxml import etree
from sqlalchemy import func, select

from adapter.errors import AdapterError
from adapter.paths import FIXTURES_DIR, PROJECT_ROOT
from adapter.privacy import personal_values_in_xml
from adapter.simulation import probes
from adapter.simulation.chains import Chain, chain, running_chain
from adapter.simulation.results import SETTLED, Check, ScenarioResult, StepFailed, shown
from adapter.simulation.scenarios import Expect, Scenario, Step
from adapter.xmlsafe import Limits

STUF = "http://www.egem.nl/StUF/StUF0301"
FIXTURES = FIXTURES_DIR / "stuf-lvo"
STAM_FIXTURES = FIXTURES_DIR / "stam"
#: the advice document an adviseur gives through samenwerken (a minimal PDF)
ADVIES_PDF = b"%PDF-1.4\n% advies van de ketensimulatie\n%%EOF\n"


# -- steps --------------------------------------------------------------------------------------------------


@dataclass
class Sent:
    body: bytes
    referentie: str
    nummer: str | None
    status: int
    answer: bytes
    #: the message the adapter stored for it (None when it stored none)
    message_id: int | None = None


def message_body(step: Step, sent: dict[int, Sent], tag: str = "") -> bytes:
    """The body a send step posts: the fixture with its overrides and a fresh referentienummer, or an earlier
    step's body byte for byte (``same_as``). ``tag``: appended to every aanvraagnummer (a run against a real
    zaaksysteem must not meet the zaken of an earlier run)."""
    if step.same_as is not None:
        return sent[step.same_as].body
    path = FIXTURES / f"{step.message}.xml"
    if not path.is_file():
        raise StepFailed(f"no fixture {path.relative_to(PROJECT_ROOT)}")
    body = path.read_text(encoding="utf-8")
    body = re.sub(
        r"<StUF:referentienummer>[^<]*</StUF:referentienummer>",
        f"<StUF:referentienummer>{step.referentie or 'SIM-' + uuid.uuid4().hex[:24]}</StUF:referentienummer>",
        body,
        count=1,
    )
    if step.nummer is not None:
        body = re.sub(r"(<LVO:aanvraagnummer>)[^<]*(</LVO:aanvraagnummer>)", rf"\g<1>{step.nummer}\g<2>", body)
    for old, new in step.replace.items():
        if old not in body:
            raise StepFailed(f"replace: {old!r} is not in fixture {step.message}")
        body = body.replace(old, new)
    if tag:
        body = re.sub(r"(<LVO:aanvraagnummer>)([^<]*)(</LVO:aanvraagnummer>)", rf"\g<1>\g<2>{tag}\g<3>", body)
    return body.encode("utf-8")


def _answer_kind(answer: bytes) -> tuple[str, str | None]:
    """("Bv03" | "Fo03" | "other", the Fo03's code)."""
    try:
        root = etree.fromstring(answer)
    except etree.XMLSyntaxError:
        return "other", None
    if root.find(f".//{{{STUF}}}Fo03Bericht") is not None:
        code = root.find(f".//{{{STUF}}}Fo03Bericht/{{{STUF}}}body/{{{STUF}}}code")
        return "Fo03", code.text if code is not None else None
    if root.find(f".//{{{STUF}}}Bv03Bericht") is not None:
        return "Bv03", None
    return "other", None


def _referentie(body: bytes) -> str:
    m = re.search(rb"<StUF:referentienummer>([^<]*)</StUF:referentienummer>", body)
    return m.group(1).decode() if m else ""


def _nummer(body: bytes) -> str | None:
    m = re.search(rb"<LVO:aanvraagnummer>([^<]*)</LVO:aanvraagnummer>", body)
    return m.group(1).decode() if m else None


def _stored_id(c: Chain, referentie: str) -> int | None:
    """The newest message stored under ``referentie``: right after a send, the one that send made."""
    from adapter.store.db import reading
    from adapter.store.tables import messages

    q = select(func.max(messages.c.id)).where(messages.c.referentienummer == referentie)
    with reading(c.services.engine) as conn:
        return conn.execute(q).scalar()


def _stored_by_nummer(c: Chain, nummer: str | None) -> int | None:
    """The newest message stored for a verzoeknummer (what a poll stored for it)."""
    from adapter.store.db import reading
    from adapter.store.tables import messages

    if nummer is None:
        return None
    with reading(c.services.engine) as conn:
        return conn.execute(select(func.max(messages.c.id)).where(messages.c.nummer == nummer)).scalar()


def _advies_message(c: Chain, av_id: str) -> int | None:
    """The newest message that answers adviesverzoek ``av_id`` (its crossRefnummer)."""
    from adapter.store.db import reading
    from adapter.store.tables import messages

    with reading(c.services.engine) as conn:
        return conn.execute(select(func.max(messages.c.id)).where(messages.c.cross_refnummer == av_id)).scalar()


def _message_state(c: Chain, message_id: int | None) -> tuple[str | None, str | None, str | None]:
    """(state, last error, delivery outcome) of a stored message."""
    from adapter.store.db import reading
    from adapter.store.tables import deliveries, messages

    q = (
        select(messages.c.state, deliveries.c.last_error, deliveries.c.outcome)
        .select_from(messages.outerjoin(deliveries, deliveries.c.message_id == messages.c.id))
        .where(messages.c.id == message_id)
    )
    with reading(c.services.engine) as conn:
        row = conn.execute(q).first() if message_id is not None else None
    return (row.state, row.last_error, row.outcome) if row is not None else (None, None, None)


class Run:
    """One scenario on one chain."""

    def __init__(self, scenario: Scenario, c: Chain, progress: Callable[[str], None]) -> None:
        self.scenario = scenario
        self.c = c
        self.progress = progress
        self.sent: dict[int, Sent] = {}
        #: step → the adviesverzoek it asked for (advies steps)
        self.adviesverzoeken: dict[int, str] = {}
        self.result = ScenarioResult(scenario)
        #: personal values of the messages this run put in (``_remember``), masked in every check
        self.personal: set[str] = set()
        #: against a real zaaksysteem every aanvraagnummer gets a suffix of this run
        self.tag = f"{uuid.uuid4().int % 10**6:06d}" if c.side.real else ""

    def run(self) -> ScenarioResult:
        t0 = time.monotonic()
        for i, step in enumerate(self.scenario.steps, start=1):
            text = step.describe or step.do
            try:
                getattr(self, f"_{step.do}")(i, step)
                self._expect(i, text, step)
            except StepFailed as exc:
                self.result.error = f"step {i} ({text}): {exc}"
                break
            except Exception as exc:  # a fault of the runner or a fake: this scenario failed there, its checks kept
                self.result.error = f"step {i} ({text}): {type(exc).__name__}: {exc}"
                break
            failed = [c for c in self.result.checks if c.step == i and not c.ok]
            self.progress(f"  step {i} {text}: {'FAILED' if failed else 'ok'}")
            if failed:
                break  # later steps build on this one
        self.result.seconds = time.monotonic() - t0
        return self.result

    def _send(self, i: int, step: Step) -> None:
        self._post_stuf(i, message_body(step, self.sent, self.tag))

    def _post_stuf(self, i: int, body: bytes) -> None:
        """A StUF-LVO message posted as the loket posts it; what was sent and answered kept for step ``i``."""
        self._remember(body)
        try:
            r = httpx.post(
                f"{self.c.url}/soap/stuf-lvo",
                content=body,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise StepFailed(f"the adapter did not answer: {type(exc).__name__}") from None
        referentie = _referentie(body)
        self.sent[i] = Sent(body, referentie, _nummer(body), r.status_code, r.content, _stored_id(self.c, referentie))
        self.result.exchanges.append((i, "sent", body.decode("utf-8", "replace")))
        self.result.exchanges.append((i, f"answer (HTTP {r.status_code})", r.text))

    def _notify(self, i: int, step: Step) -> None:
        """STAM: the verzoek into the werkmap (when given), then its notificatie posted as the loket does."""
        if self.c.werkmap is None:
            raise StepFailed("a notify step needs the simulated werkmap (--target fake)")
        if step.verzoek is not None:
            path = STAM_FIXTURES / f"{step.verzoek}.xml"
            if not path.is_file():
                raise StepFailed(f"no fixture {path.relative_to(PROJECT_ROOT)}")
            self._into_werkmap(path.read_bytes(), step)
        path = STAM_FIXTURES / f"{step.notificatie}.xml"
        if not path.is_file():
            raise StepFailed(f"no fixture {path.relative_to(PROJECT_ROOT)}")
        body = path.read_bytes()
        for old, new in step.replace.items():
            if old.encode() not in body:
                raise StepFailed(f"replace: {old!r} is not in fixture {step.notificatie}")
            body = body.replace(old.encode(), new.encode())
        try:
            r = httpx.post(
                f"{self.c.url}/stam/verzoeknotificatie",
                content=body,
                headers={"Content-Type": "application/xml"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise StepFailed(f"the adapter did not answer: {type(exc).__name__}") from None
        m = re.search(rb"<vn:verzoeknummer>([^<]*)</vn:verzoeknummer>", body)
        nummer = m.group(1).decode() if m else None
        mid = r.json().get("id") if r.headers.get("content-type", "").startswith("application/json") else None
        self.sent[i] = Sent(body, "", nummer, r.status_code, r.content, mid if isinstance(mid, int) else None)
        self.result.exchanges.append((i, "notificatie", body.decode("utf-8", "replace")))
        self.result.exchanges.append((i, f"answer (HTTP {r.status_code})", r.text))

    def _into_werkmap(self, xml: bytes, step: Step) -> None:
        self._remember(xml)
        try:
            self.c.werkmap.add_verzoek(xml, step.documents or None)
        except ValueError as exc:  # not valid against our STAM schema, a documentId the verzoek lacks, twice
            raise StepFailed(f"the werkmap refused verzoek {step.verzoek}: {exc}") from None

    def _poll(self, i: int, step: Step) -> None:
        """A verzoek whose notificatie never came: into the werkmap as submitted now (the poll looks back a few
        days from now), then the werkmap poll runs once, as the scheduler runs it."""
        from adapter.jobs.werkmap_poll import poll

        if self.c.werkmap is None:
            raise StepFailed("a poll step needs the simulated werkmap (--target fake)")
        nummer = None
        if step.verzoek is not None:
            path = STAM_FIXTURES / f"{step.verzoek}.xml"
            if not path.is_file():
                raise StepFailed(f"no fixture {path.relative_to(PROJECT_ROOT)}")
            xml = path.read_bytes()
            now = datetime.now().astimezone().replace(microsecond=0).isoformat().encode()
            xml = re.sub(rb"(<vz:indiendatum>)[^<]*(</vz:indiendatum>)", rb"\g<1>" + now + rb"\g<2>", xml)
            self._into_werkmap(xml, step)
            m = re.search(rb"<vz:verzoeknummer>([^<]*)</vz:verzoeknummer>", xml)
            nummer = m.group(1).decode() if m else None
        result = poll(self.c.services)
        self.result.exchanges.append((i, "werkmap poll", result.detail))
        self.sent[i] = Sent(b"", "", nummer, 0, result.detail.encode(), _stored_by_nummer(self.c, nummer))

    def _catalogus(self, i: int, step: Step) -> None:
        self.c.side.add_zaaktype(step)

    def _advies(self, i: int, step: Step) -> None:
        """The behandelaar asks for advice on the zaak of the last send (as ``advies aanvragen`` does); the
        delivery workers relay it to the adviseur."""
        from adapter.advies.service import Aanvraag, AanvraagInvalid, aanvragen

        if self.c.loket is None:
            raise StepFailed("an advies step needs the simulated loket and samenwerken (--target fake)")
        zaak = self._zaak(i)
        if zaak is None:
            raise StepFailed("no zaak to ask advice for: send an aanvraag and wait until it is delivered")
        assert step.adviseur is not None
        request = Aanvraag(zaak["identificatie"], step.adviseur, tuple(step.bijlagen), None, step.omschrijving)
        try:
            av, _ = aanvragen(self.c.services.settings, self.c.services.engine, request, bron="ketensimulatie")
        except AanvraagInvalid as exc:
            raise StepFailed(f"the adviesverzoek was refused: {exc}") from None
        self.adviesverzoeken[i] = av.id
        self.sent[i] = Sent(b"", av.id, av.aanvraagnummer, 0, b"", av.message_id)
        self.result.exchanges.append((i, "adviesverzoek", f"{av.id} to {av.adviseur} via {av.channel}"))

    def _adviesverzoek(self, i: int, of: int | None) -> str:
        earlier = [n for n in self.adviesverzoeken if n < i and (of is None or n == of)]
        if not earlier:
            raise StepFailed("no adviesverzoek was asked for before this step (an advies step)")
        return self.adviesverzoeken[max(earlier)]

    def _answer(self, i: int, step: Step) -> None:
        """The adviseur answers: by StUF-LVO the loket sends vrgDi01VoegAdviesToe; by samenwerken the adviseur
        completes the actieverzoek with a document and the adapter's samenwerken poll picks it up."""
        from adapter.advies import store

        av_id = self._adviesverzoek(i, step.of)
        av = store.get(self.c.services.engine, av_id)
        assert av is not None and step.strekking is not None
        if av.state != "uitgezet":
            raise StepFailed(
                f"adviesverzoek {av_id} is {av.state}, not uitgezet: its relay has not reached the adviseur"
            )
        if av.channel == "stuf-lvo":
            body = (FIXTURES / "vrgDi01VoegAdviesToe.xml").read_text(encoding="utf-8")
            body = body.replace("ZS-ADV-2026-0042", av_id).replace(
                "<LVO:strekking>positief<", f"<LVO:strekking>{escape(step.strekking)}<"
            )
            body = re.sub(r"(<LVO:aanvraagnummer>)[^<]*(<)", rf"\g<1>{av.aanvraagnummer}\g<2>", body)
            self._post_stuf(i, body.replace("1234567_", f"{av.aanvraagnummer}_").encode())
            return
        from adapter.jobs.samenwerken_poll import poll

        ours = [a for _, a in self.c.samenwerken.actieverzoeken() if a.kenmerk == av_id]
        if len(ours) != 1:
            raise StepFailed(f"samenwerken holds {len(ours)} actieverzoeken of adviesverzoek {av_id}, not 1")
        name = f"{av.aanvraagnummer}_advies_{av.adviseur}.pdf"
        self.c.samenwerken.complete(ours[0].actieverzoek_id, step.strekking, name, ADVIES_PDF)
        result = poll(self.c.services)
        self.result.exchanges.append((i, "samenwerken poll", result.detail))
        self.sent[i] = Sent(b"", "", av.aanvraagnummer, 0, b"", _advies_message(self.c, av_id))

    def _postbus(self, i: int, step: Step) -> None:
        """The loket puts a file in the postbox inbox over SFTP (when ``file`` is given); then the adapter's
        postbox pickup runs once, as the scheduler runs it."""
        import paramiko

        from adapter.jobs.scheduler import run_job
        from adapter.simulation import loket_sftp

        if self.c.postbox is None:
            raise StepFailed("a postbus step needs the simulated SFTP postbox (--target fake)")
        if step.file is not None:
            try:
                loket_sftp.put(self.c.postbox, step.file, loket_sftp.file_bytes(step.file, step.size))
            except (OSError, paramiko.SSHException) as exc:
                raise StepFailed(f"the loket could not put {step.file} in the postbox: {exc}") from None
            self.result.exchanges.append((i, "postbus", f"{step.file}: {step.size} bytes put in the inbox over SFTP"))
        outcome = run_job(self.c.services, "postbox-pickup", force=True)
        self.result.exchanges.append((i, "postbox pickup", f"{outcome.status}: {outcome.detail}"))

    def _fail(self, i: int, step: Step) -> None:
        if step.system == "werkmap":
            assert step.path is not None
            self._werkmap().fail_next(step.path, status=step.status, times=step.times)
        else:
            self.c.side.fail(step)

    def _recover(self, i: int, step: Step) -> None:
        if step.system == "werkmap":
            self._werkmap().clear_faults()
        else:
            self.c.side.recover()

    def _werkmap(self) -> Any:
        if self.c.werkmap is None:
            raise StepFailed("the werkmap fails only when it is the simulated one (--target fake)")
        return self.c.werkmap

    def _last_sent(self, i: int, of: int | None) -> Sent:
        if of is not None:
            return self.sent[of]
        earlier = [n for n in self.sent if n < i]
        if not earlier:
            raise StepFailed("no message was sent before this step")
        return self.sent[max(earlier)]

    def _wait(self, i: int, step: Step) -> None:
        sent = self._last_sent(i, step.of)
        deadline = time.monotonic() + step.timeout
        while time.monotonic() < deadline:
            state, _, _ = _message_state(self.c, sent.message_id)
            if state == step.expect.state or state in SETTLED:
                return
            time.sleep(0.05)

    def _check(self, i: int, text: str, name: str, expected: Any, actual: Any) -> None:
        self._add(i, text, name, shown(expected), shown(actual), expected == actual)

    def _add(self, i: int, text: str, name: str, expected: str, actual: str, ok: bool) -> None:
        self.result.checks.append(Check(self.scenario.id, i, text, name, expected, actual, ok, self.personal))

    def _remember(self, body: bytes) -> None:
        """Keep the personal values of a message this run puts in (sent, or placed in the werkmap): every check
        masks them wherever they turn up, e.g. the initiatiefnemer's street copied into a zaak omschrijving."""
        self.personal |= personal_values_in_xml(body, Limits())

    def _expect(self, i: int, text: str, step: Step) -> None:
        e: Expect = step.expect
        if e.status is not None:
            self._check(i, text, "status", e.status, self._last_sent(i + 1, step.of).status)
        if e.answer is not None or e.foutcode is not None:
            sent = self._last_sent(i + 1, step.of) if step.do != "send" else self.sent[i]
            kind, code = _answer_kind(sent.answer)
            if e.answer is not None:
                self._check(i, text, "answer", e.answer, kind)
            if e.foutcode is not None:
                self._check(i, text, "foutcode", e.foutcode, code)
        if e.state is not None:
            sent = self._last_sent(i + 1, step.of)
            state, error, _ = _message_state(self.c, sent.message_id)
            actual = f"{state} ({error})" if error and state != e.state else state
            self._check(i, text, "state", e.state, actual)
        if e.outcome is not None:
            outcome = _message_state(self.c, self._last_sent(i + 1, step.of).message_id)[2]
            ok = outcome is not None and e.outcome in outcome
            self._add(i, text, "outcome", f"containing {e.outcome!r}", repr(outcome), ok)
        if e.zaken is not None or e.documenten is not None or e.rollen is not None:
            zaken = self.c.side.zaken({s.nummer for s in self.sent.values() if s.nummer})
            if e.zaken is not None:
                self._check(i, text, "zaken", e.zaken, len(zaken))
            if e.documenten is not None:
                self._check(i, text, "documenten", e.documenten, self.c.side.documenten(zaken))
            if e.rollen is not None:
                self._check(i, text, "rollen", e.rollen, self.c.side.rollen(zaken))
        if e.zaak:
            zaak = self._zaak(i)
            for path, wanted in e.zaak.items():
                wanted = self._tagged(wanted)  # this run's aanvraagnummers, not every long number (an RSIN)
                actual = probes.dig(zaak, path) if zaak is not None else "<no zaak>"
                self._check(i, text, f"zaak.{path}", wanted, actual)
        if e.json_paths:
            zaak = self._zaak(i)
            view = self.c.side.view(zaak) if zaak is not None else None
            for path, wanted in e.json_paths.items():
                actual = probes.dig(view, path) if view is not None else "<no zaak>"
                self._check(i, text, f"json {path}", self._tagged(wanted), actual)
        if e.error is not None:
            error = _message_state(self.c, self._last_sent(i + 1, step.of).message_id)[1]
            ok = error is not None and e.error in error
            self._add(i, text, "error", f"containing {e.error!r}", repr(error), ok)
        if e.overdrachten is not None:
            if self.c.werkmap is None:
                raise StepFailed("expect.overdrachten needs the simulated werkmap (--target fake)")
            wanted_t = [f"{o.verzoeknummer} to {o.naar} as {o.rol}" for o in e.overdrachten]
            actual_t = [f"{t.verzoeknummer} to {t.naar_oin} as {t.rol}" for t in self.c.werkmap.transfers]
            self._check(i, text, "overdrachten", wanted_t, actual_t)
        if e.advies is not None:
            from adapter.advies import store

            av_id = self._adviesverzoek(i + 1, None)
            av = store.get(self.c.services.engine, av_id)
            assert av is not None
            if e.advies.state is not None:
                self._check(i, text, "advies.state", e.advies.state, av.effective_state())
            if e.advies.strekking is not None:
                self._check(i, text, "advies.strekking", e.advies.strekking, av.advies_strekking)
        if e.postbus is not None:
            self._expect_postbus(i, text, e)
        for event in e.log:
            seen = self.c.log.events() if self.c.log is not None else []
            ok = event in seen
            actual = "logged" if ok else f"not among {len(seen)} events ({', '.join(sorted(set(seen))[:12])})"
            self._add(i, text, "log", repr(event), actual, ok)

    def _expect_postbus(self, i: int, text: str, e: Expect) -> None:
        from adapter.simulation import loket_sftp
        from adapter.store import postbox as postbox_store

        assert e.postbus is not None
        if self.c.postbox is None:
            raise StepFailed("expect.postbus needs the simulated SFTP postbox (--target fake)")
        if e.postbus.inbox is not None or e.postbus.processed is not None:
            folders = loket_sftp.listing(self.c.postbox)
            for folder in ("inbox", "processed"):
                wanted = getattr(e.postbus, folder)
                if wanted is not None:
                    self._check(i, text, f"postbus.{folder}", sorted(wanted), folders[folder])
        if e.postbus.orphans is not None:
            orphans = sorted(f.remote_name for f in postbox_store.orphans(self.c.services.engine))
            self._check(i, text, "postbus.orphans", sorted(e.postbus.orphans), orphans)

    def _tagged(self, wanted: Any) -> Any:
        """An expected text with this run's aanvraagnummers as sent (against a real zaaksysteem they carry
        the run's suffix)."""
        if not self.tag or not isinstance(wanted, str):
            return wanted
        for s in self.sent.values():
            if s.nummer and s.nummer.endswith(self.tag):
                plain = s.nummer[: -len(self.tag)]
                wanted = re.sub(rf"(?<!\d){plain}(?!\d)", s.nummer, wanted)
        return wanted

    def _zaak(self, i: int) -> dict[str, Any] | None:
        """The zaak of the last sent message's nummer (identificatie ending in it); ambiguity is a failed step."""
        nummer = self._last_sent(i + 1, None).nummer
        found = self.c.side.zaken({nummer}) if nummer else []
        if len(found) > 1:
            raise StepFailed(f"{len(found)} zaken end in nummer {nummer}: which one is meant is ambiguous")
        return found[0] if found else None


@contextmanager
def _recording(c: Chain, folder: Path | None, description: str) -> Iterator[None]:
    """Record the chain's flows into ``folder`` (``adapter.simulation.recorded``) while the scenario runs."""
    if folder is None:
        yield
        return
    from adapter import recording
    from adapter.simulation.recorded import FlowRecorder, setup_of

    shutil.rmtree(folder, ignore_errors=True)  # a recording is of one run, not a mix of two
    settings = c.services.settings
    recorder = FlowRecorder(c.services.engine, folder, setup_of(settings), settings.store.files_dir)
    recorder.description = description
    with recording.installed(recorder):
        try:
            yield
        finally:
            # the last wait saw a state the run committed; the run tells the recorder right after: the workers
            # stop (they would with the chain) before the recorder goes, so that flow is written whole
            if c.services.outbox is not None:
                c.services.outbox.stop()


#: steps that need the fakes of this chain: the werkmap, or a zaaksysteem and catalogus the runner can change
FAKE_STEPS = ("fail", "recover", "notify", "poll", "catalogus", "advies", "answer", "postbus")


def _far_sides(s: Scenario) -> frozenset[str]:
    """The far sides beyond zaaksysteem and werkmap the scenario's steps need (``chain`` starts only those)."""
    far = set()
    if any(step.do in ("advies", "answer") for step in s.steps):
        far.add("advies")
    if any(step.do == "postbus" or step.expect.postbus is not None for step in s.steps):
        far.add("postbus")
    return frozenset(far)


def _sshd_available() -> bool:
    from adapter.simulation.fakes import SSHD

    return SSHD.exists() and shutil.which("ssh-keygen") is not None


def _cannot_run(s: Scenario, config: Path | None, url: str | None) -> str | None:
    """Why a scenario cannot run against this target (None: it can)."""
    if config is None:
        return None
    if any(step.do in FAKE_STEPS or step.expect.overdrachten is not None for step in s.steps) or s.mapping:
        return (
            "makes the zaaksysteem fail, changes its catalogus or the mapping, or needs the simulated werkmap: "
            "only with --target fake"
        )
    if any(step.expect.postbus is not None for step in s.steps):
        return "expects files in the simulated SFTP postbox: only with --target fake"
    if url and any(step.expect.log for step in s.steps):
        return "expects log events of an adapter started here, not of the one at --url"
    return None


def run_all(
    scenarios: list[Scenario],
    *,
    specs: Path,
    mappings: Path | None,
    progress: Callable[[str], None],
    config: Path | None = None,
    url: str | None = None,
    record: Path | None = None,
) -> list[ScenarioResult]:
    """Every scenario on its own chain. With ``config`` (a real zaaksysteem) a scenario that makes the
    zaaksysteem fail cannot run: it is skipped, saying so. With ``url`` (and ``config``) every scenario runs
    against the adapter already running there (``running_chain``). With ``record`` each scenario's flows are
    recorded into ``record/<scenario id>`` (a rerun: ``simulate --rerun``)."""
    results = []
    for s in scenarios:
        progress(f"{s.id}: {s.description}")
        why = _cannot_run(s, config, url)
        if why is None and "postbus" in _far_sides(s) and not _sshd_available():
            why = "needs OpenSSH's sshd (/usr/sbin/sshd) and ssh-keygen for the SFTP postbox; this machine has none"
        if why is not None:
            result = ScenarioResult(s, skipped=why)
            progress(f"{s.id}: skipped ({result.skipped})")
            results.append(result)
            continue
        try:
            far = _far_sides(s)
            started = running_chain(url, config) if url and config else chain(specs, mappings, config, s.mapping, far)
            with started as c, _recording(c, record / s.id if record else None, s.description):
                result = Run(s, c, progress).run()
        except AdapterError:
            raise  # the config or the mapping files: the same for every scenario, one line for the CLI
        except Exception as exc:  # the chain itself did not start: this scenario failed, the others still run
            result = ScenarioResult(s, error=f"the chain did not start: {exc}")
        progress(f"{s.id}: {'ok' if result.ok else 'FAILED'} ({result.seconds:.1f} s)")
        results.append(result)
    return results
