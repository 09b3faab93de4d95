"""Scenario files of the ketensimulatie: what the loket sends, what the far side does, what must come out.

One TOML file per scenario (``fixtures/scenarios/*.toml``, format in ``docs/ketensimulatie.md``): an id, a
description, preconditions (free text for the report), and numbered ``[[steps]]``. A step does one thing
(``send`` a StUF-LVO message, ``notify`` a STAM verzoek, ``poll`` the werkmap, add a zaaktype version to the
``catalogus``, make the zaaksysteem ``fail``, ``recover`` it, ``wait`` for a message's state) and may carry
expectations (``[steps.expect]``). A wrong file is one line naming the file and the key, before
anything runs.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapter.errors import ConfigError
from adapter.simulation import probes
from adapter.store.states import MESSAGE_STATES

#: steps that bring a message into the adapter (``same_as`` and ``of`` refer to them)
MESSAGE_STEPS = ("send", "notify", "poll", "advies", "answer")

#: the keys each kind of step reads, beside do, describe, expect and of (which message the expectations are
#: about); any other key is refused, since it would have no effect
STEP_KEYS: dict[str, frozenset[str]] = {
    "send": frozenset({"message", "nummer", "replace", "referentie", "same_as"}),
    "notify": frozenset({"notificatie", "verzoek", "replace", "documents"}),
    "poll": frozenset({"verzoek", "documents"}),
    "catalogus": frozenset({"zaaktype", "omschrijving", "begin", "einde", "concept", "close_previous"}),
    "advies": frozenset({"adviseur", "bijlagen", "omschrijving"}),
    "answer": frozenset({"strekking"}),
    "postbus": frozenset({"file", "size"}),
    "fail": frozenset({"path", "method", "status", "times", "system"}),
    "recover": frozenset({"system"}),
    "wait": frozenset({"timeout"}),
}
_EVERY_STEP = frozenset({"do", "describe", "expect", "of"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Overdracht(_Strict):
    verzoeknummer: str
    naar: str = Field(..., pattern=r"^\d{20}$")
    rol: Literal["behandeldienst", "bevoegdGezag"]


class AdviesExpect(_Strict):
    state: Literal["uitgezet", "gereed", "ingetrokken", "verlopen"] | None = None
    strekking: str | None = None


class PostbusExpect(_Strict):
    inbox: list[str] | None = None
    processed: list[str] | None = None
    orphans: list[str] | None = None


class Expect(_Strict):
    """What must hold after the step. Every key given is checked; a failed one names expected and actual."""

    #: the SOAP answer's kind: a bevestiging or a foutbericht
    answer: Literal["Bv03", "Fo03"] | None = None
    #: the HTTP status of the answer (a STAM notificatie: 202 accepted, 400 refused)
    status: int | None = Field(None, ge=100, le=599)
    #: the Fo03's StUF foutcode (StUF055, StUF058, …)
    foutcode: str | None = Field(None, pattern=r"^StUF\d{3}$")
    #: the message's state in the message log (after ``wait``: waited for)
    state: str | None = None
    #: how many of each the zaaksysteem holds
    zaken: int | None = Field(None, ge=0)
    documenten: int | None = Field(None, ge=0)
    rollen: int | None = Field(None, ge=0)
    #: a text the delivery's outcome line contains (e.g. "triage": no activiteit was mapped)
    outcome: str | None = None
    #: fields of the message's zaak (the one whose identificatie ends in its nummer), by dotted path
    zaak: dict[str, Any] = Field(default_factory=dict)
    #: paths into that zaak, its zaaktype, documenten (with their inhoud's sha256 and size), rollen, statussen
    #: and zaakobjecten (``probes.dig``: ``documenten[bestandsnaam=a.pdf].inhoud_sha256``, ``rollen.length``)
    json_paths: dict[str, Any] = Field(default_factory=dict, alias="json")
    #: a text the delivery's last error contains (why it needs attention)
    error: str | None = None
    #: every overdracht the simulated werkmap recorded, in order (verzoeknummer, naar, rol)
    overdrachten: list[Overdracht] | None = None
    #: the adviesverzoek of the step's advies step (or the last one): its state and the advice's strekking
    advies: AdviesExpect | None = None
    #: the SFTP postbox: file names in its inbox and processed folders (over SFTP), and the orphans the adapter
    #: holds (picked-up files no message claims)
    postbus: PostbusExpect | None = None
    #: event names the chain's adapter logged since the scenario began (each must appear at least once)
    log: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_state(self) -> Expect:
        if self.state is not None and self.state not in MESSAGE_STATES:
            raise ValueError(f"state {self.state!r} is not a message state ({', '.join(MESSAGE_STATES)})")
        for path in [*self.json_paths, *self.zaak]:
            probes.check_path(path)
        return self


class Step(_Strict):
    do: Literal["send", "notify", "poll", "catalogus", "advies", "answer", "postbus", "fail", "recover", "wait"]
    #: shown in progress and reports
    describe: str | None = None
    # send: a fixture (fixtures/stuf-lvo/NAME.xml), its aanvraagnummer, text replacements; or a step's body again
    message: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    nummer: str | None = Field(None, pattern=r"^[0-9]{1,20}$")
    replace: dict[str, str] = Field(default_factory=dict)
    #: the StUF referentienummer (default: a fresh one per send, as the loket gives every message its own)
    referentie: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    #: resend the body of that earlier send step, byte for byte (a duplicate)
    same_as: int | None = Field(None, ge=1)
    # notify (STAM): put fixtures/stam/VERZOEK.xml in the werkmap (optional), post fixtures/stam/NOTIFICATIE.xml
    verzoek: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    notificatie: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    #: notify/poll: sizes in bytes of the verzoek's documents the werkmap serves (documentId → size)
    documents: dict[str, int] = Field(default_factory=dict)
    # poll: put fixtures/stam/VERZOEK.xml in the werkmap as submitted now (no notificatie), run the werkmap poll
    # catalogus: a new version of zaaktype ``zaaktype`` valid from ``begin`` (to ``einde``); ``close_previous``
    # ends the version valid the day before ``begin`` on that day, as publishing a new version does
    zaaktype: str | None = Field(None, min_length=1)
    omschrijving: str | None = Field(None, min_length=1)
    begin: date | None = None
    einde: date | None = None
    concept: bool = False
    close_previous: bool = True
    # advies: the behandelaar asks ``adviseur`` (an [adviseurs.NAME] of the chain) for advice on the zaak of the
    # last send, sending ``bijlagen`` (bijlageIds of the aanvraag); ``omschrijving`` says what is asked
    adviseur: Literal["welstand", "brandweer"] | None = None
    bijlagen: list[str] = Field(default_factory=list)
    # answer: the adviseur answers the adviesverzoek of the last advies step (or step ``of``) with ``strekking``
    # (StUF-LVO: vrgDi01VoegAdviesToe; samenwerken: the actieverzoek completed, then the samenwerken poll)
    strekking: str | None = Field(None, min_length=1, max_length=200)
    # postbus: the loket puts ``file`` (``size`` generated bytes) in the postbox inbox over SFTP (when given), then
    # the adapter's postbox pickup runs once
    file: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
    size: int = Field(1024, ge=0, le=100_000_000)
    # fail: the zaaksysteem answers ``status`` to the next ``times`` requests of ``method`` on a path ending ``path``
    # (``system = "werkmap"``: the werkmap, to requests of any method); recover: that system is back
    system: Literal["zaaksysteem", "werkmap"] = "zaaksysteem"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str | None = None
    status: int = Field(503, ge=400, le=599)
    times: int = Field(1, ge=1, le=1000)
    # wait: for expect.state of the message of the last send step (or step ``of``), at most ``timeout`` seconds
    of: int | None = Field(None, ge=1)
    timeout: float = Field(30.0, gt=0, le=600)
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _complete(self) -> Step:
        stray = sorted(self.model_fields_set - _EVERY_STEP - STEP_KEYS[self.do])
        if stray:
            keys = ", ".join(sorted(STEP_KEYS[self.do])) or "none"
            raise ValueError(f"{stray[0]}: a {self.do} step has no such key (its own: {keys})")
        if self.do == "send" and (self.message is None) == (self.same_as is None):
            raise ValueError("a send step needs message = FIXTURE or same_as = STEP (one of them)")
        if self.do == "notify" and not self.notificatie:
            raise ValueError("a notify step needs notificatie = FIXTURE (fixtures/stam/NAME.xml)")
        if self.do == "fail" and not self.path:
            raise ValueError("a fail step needs path (the end of the far system's path, e.g. /zaken)")
        if self.system == "werkmap" and "method" in self.model_fields_set:
            raise ValueError("method: the werkmap fails requests of every method on that path (leave method out)")
        if self.do == "catalogus" and not (self.zaaktype and self.omschrijving and self.begin):
            raise ValueError("a catalogus step needs zaaktype, omschrijving and begin (a date)")
        if any(size < 0 for size in self.documents.values()):
            raise ValueError("documents: a size is a number of bytes (0 or more)")
        if self.do == "advies" and self.adviseur is None:
            raise ValueError('an advies step needs adviseur = "welstand" (StUF-LVO) or "brandweer" (samenwerken)')
        if self.do == "answer" and self.strekking is None:
            raise ValueError("an answer step needs strekking (the advice: positief, negatief, …)")
        if self.do == "wait" and self.expect.state is None:
            raise ValueError("a wait step needs expect.state (the state to wait for)")
        return self


class Scenario(_Strict):
    id: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = Field(..., min_length=1)
    preconditions: list[str] = Field(default_factory=list)
    #: TOML added to the end of the chain's copy of every mapping file (a rule only this scenario needs)
    mapping: str | None = None
    steps: list[Step] = Field(..., min_length=1)
    #: the file it came from (not in the file)
    source: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        for i, step in enumerate(self.steps, start=1):
            for ref, kinds in ((step.same_as, ("send",)), (step.of, MESSAGE_STEPS)):
                if ref is not None and (ref >= i or self.steps[ref - 1].do not in kinds):
                    raise ValueError(f"steps.{i}: step {ref} is not an earlier send step")
        return self


def load(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    try:
        return Scenario.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p + 1) if isinstance(p, int) else str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else str(err.get("ctx", {}).get("error", err["msg"]))
        raise ConfigError(f"{path}: {where}: {msg}") from None


def load_all(paths: list[Path]) -> list[Scenario]:
    """Scenario files (a folder: every ``*.toml`` in it, by name); ids must be unique."""
    files: list[Path] = []
    for p in paths:
        files += sorted(p.glob("*.toml")) if p.is_dir() else [p]
    scenarios = [load(f) for f in files]
    seen: dict[str, str] = {}
    for s in scenarios:
        if s.id in seen:
            raise ConfigError(f"{s.source}: id {s.id!r} is also the id of {seen[s.id]}")
        seen[s.id] = s.source
    if not scenarios:
        raise ConfigError(f"no scenario files in {', '.join(map(str, paths))}")
    return scenarios
