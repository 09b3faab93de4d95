"""What every target plugin offers, and the checkpointed step runner they share.

A delivery is a sequence of steps, each with a stable key (``zaak:ZT-OMV-REG``, ``document:1234567-1``).
A step's result is stored when it succeeds, so a retry skips it. A step whose call was sent but whose
outcome is unknown (timeout, crash) is marked *started*: on the retry the target first looks for what
that call may have created before creating again — by identity (a deterministic identificatie, the
betrokkene, a toelichting naming the message), never by type alone, so an object an earlier delivery
made is never adopted. That is what keeps a retry from making a second zaak or document, and from
mistaking an old one for the new one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NotRequired, Protocol, TypedDict, TypeVar, cast

from adapter.errors import TargetError, WaitingError
from adapter.mapping.opdracht import Opdracht, ZaakOpdracht

__all__ = ["Call", "DryRunSteps", "Made", "Result", "Steps", "Target", "TargetError", "WaitingError", "run_step"]

#: A step's checkpointed result as stored (a JSON object).
Result = dict[str, Any]
R = TypeVar("R", bound=Mapping[str, Any])


class Made(TypedDict):
    """The result of a step that created an object in the zaaksysteem: where it is and its identificatie;
    for a document also its informatieobjecttype, for a link the object linked (so a resend after a
    mapping change can tell what changed)."""

    url: str
    identificatie: str | None
    informatieobjecttype: NotRequired[str]
    informatieobject: NotRequired[str]


@dataclass(frozen=True)
class Call:
    """A call a target would make: for ``mappings preview`` and the attempt log."""

    step: str
    method: str
    endpoint: str
    body: Any = None

    def summary(self) -> str:
        return f"{self.step}: {self.method} {self.endpoint}"


class Steps(Protocol):
    """Checkpoint store of one delivery (implemented by the outbox on the database)."""

    def result(self, key: str) -> Result | None: ...
    def was_started(self, key: str) -> bool: ...
    def start(self, key: str) -> None: ...
    def done(self, key: str, result: Mapping[str, Any], recoverable: bool = False) -> None: ...
    def zaak(self, nummer: str, zaaktype: str | None = None) -> Result | None: ...
    def zaken(self, nummer: str) -> list[Result]: ...
    def link_zaak(self, nummer: str, zaaktype: str, url: str, identificatie: str | None) -> None: ...
    def document(self, nummer: str, zaak: str, bijlage: str) -> Result | None: ...
    def link_document(
        self, nummer: str, zaken: Sequence[str], bijlage: str, identificatie: str, omvang: int | None
    ) -> None: ...
    def called(self, call: str) -> None: ...


class DryRunSteps:
    """Steps for ``mappings preview``: nothing is stored, every call is recorded, no zaak lookups."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls

    def result(self, key: str) -> Result | None:
        return None

    def was_started(self, key: str) -> bool:
        return False

    def start(self, key: str) -> None:
        pass

    def done(self, key: str, result: Mapping[str, Any], recoverable: bool = False) -> None:
        pass

    def zaak(self, nummer: str, zaaktype: str | None = None) -> Result | None:
        placeholder = f"<zaak van verzoek {nummer}>"
        return {"url": placeholder, "identificatie": placeholder, "zaaktype": zaaktype or "<zaaktype>"}

    def zaken(self, nummer: str) -> list[Result]:
        zaak = self.zaak(nummer)
        return [zaak] if zaak else []

    def link_zaak(self, nummer: str, zaaktype: str, url: str, identificatie: str | None) -> None:
        pass

    def document(self, nummer: str, zaak: str, bijlage: str) -> Result | None:
        return None  # a preview shows the calls of a first delivery of each bijlage

    def link_document(
        self, nummer: str, zaken: Sequence[str], bijlage: str, identificatie: str, omvang: int | None
    ) -> None:
        pass

    def called(self, call: str) -> None:
        pass


def run_step(
    steps: Steps,
    key: str,
    create: Callable[[], R],
    find: Callable[[], R | None] | None = None,
    *,
    look_first: bool = False,
) -> R:
    """Run one checkpointed step: skip if done; after an uncertain attempt (or always, with
    ``look_first``: the object may exist from an earlier delivery), adopt what ``find`` recognises."""
    done = steps.result(key)
    if done is not None:
        return cast(R, done)  # the JSON of what ``create`` or ``find`` returned on an earlier run
    if find is not None and (look_first or steps.was_started(key)):
        existing = find()
        if existing is not None:
            steps.done(key, existing, recoverable=True)
            return existing
    steps.start(key)
    result = create()
    steps.done(key, result, recoverable=find is not None)
    return result


class Target(Protocol):
    name: str
    kind: str

    def check(self) -> list[str]:
        """Problems reaching or using the target (empty when fine)."""
        ...

    def check_zaak(self, zaak: ZaakOpdracht, on: date) -> list[str]:
        """For ``mappings check --online``: every catalogus lookup a delivery of this zaak would make on
        date ``on``, by the delivery's own code; one line per problem (empty when all resolve)."""
        ...

    def preview(self, opdracht: Opdracht) -> list[Call]:
        """The calls a delivery would make, without making them."""
        ...

    def deliver(self, opdracht: Opdracht, steps: Steps) -> str:
        """Carry out the opdracht with checkpoints; return a one-line summary; raise TargetError."""
        ...
