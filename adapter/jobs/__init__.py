"""The scheduler and every periodic job, defined in one place (``scheduler.JOBS``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PollResult:
    """What a poll job (werkmap-poll, samenwerken-poll) gives the scheduler to record for its run."""

    found: int
    new: int
    errors: int
    detail: str
