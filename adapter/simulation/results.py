"""What a ketensimulatie run yields, for the console, the reports and a rerun: each expectation checked
(``Check``), each scenario's outcome (``ScenarioResult``), and a step that could not be carried out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any

from adapter.privacy import mask_values, masked_field, model_view

if TYPE_CHECKING:
    from adapter.simulation.scenarios import Scenario

#: states a delivery does not leave by itself: waiting longer cannot change them
SETTLED = ("delivered", "dead", "needs-attention", "rejected", "hint-refused", "handled")


def shown(value: Any, *, quoted: bool = False) -> str:
    """A value as a ``Check`` shows it: a whole object or list (a rol, a verzoek) with its personal fields masked
    by their keys first, since its path names none of them (``rollen[0]``) and the names in it would pass the
    BSN/e-mail/telephone masking of ``Check``; ``quoted``: a text in quotes (a rerun shows ``''`` vs ``None``)."""
    if isinstance(value, dict | list | tuple):
        return repr(model_view(value, masked=True))
    return repr(value) if quoted else str(value)


@dataclass(frozen=True)
class Check:
    """One expectation of one step, as the reports show it."""

    scenario: str
    step: int
    step_text: str
    name: str
    expected: str
    actual: str
    ok: bool
    #: the personal values of the messages the run put in, masked wherever they turn up (the initiatiefnemer's
    #: street in a zaak omschrijving), beside what ``masked_field`` knows by the field's name
    personal: InitVar[Collection[str]] = ()

    def __post_init__(self, personal: Collection[str]) -> None:
        # console, JUnit and HTML show these: personal data masked once, here (adapter.privacy)
        for side in ("expected", "actual"):
            object.__setattr__(self, side, masked_field(self.name, mask_values(getattr(self, side), personal)))

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.scenario} step {self.step} ({self.step_text}): {self.name}: expected {self.expected}, "
            f"actual {self.actual}: {verdict}"
        )


@dataclass
class ScenarioResult:
    scenario: Scenario
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    #: a step that could not run at all (the chain broke, a fixture is missing): the scenario failed there
    error: str | None = None
    #: what was exchanged, per step (requests and answers, for the HTML report)
    exchanges: list[tuple[int, str, str]] = field(default_factory=list)
    #: why the scenario was not run (it cannot be against this target)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)


class StepFailed(Exception):
    """A step that could not be carried out (not an expectation that did not hold)."""
