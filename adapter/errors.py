"""The adapter's one error hierarchy: every failure an operator must tell apart has its own class.

Whether a failure is worth retrying is part of the type (``transient``), so the delivery worker decides
from the class, never from the message text: a transient failure (network, timeout, 5xx, 429, a lock)
is retried with backoff; a permanent one (unreadable verzoek, mapping that cannot apply, a request the
far system refuses) goes to ``needs-attention`` at once, because retrying it only wastes hours.

    AdapterError
    ├── ConfigError          configuration file or environment unusable
    ├── StoreUnavailable     database cannot take or give data right now          (transient)
    ├── InputError           a message or file we cannot read
    │   ├── XmlRejected      not well-formed, hostile, too big or too deep
    │   └── SchemaInvalid    not valid against its schema
    ├── MappingError         mapping files do not load, or cannot apply to a verzoek
    ├── LeaseLost            another worker took this delivery over: stop, write nothing
    └── TargetError          a far system (zaaksysteem, werkmap, loket) failed     (transient)
        ├── WaitingError     the delivery cannot run yet (its aanvraag has no zaak) (transient)
        ├── TargetRefused    the far system refused the request or answered nonsense
        │   └── HintNotConfirmed  the werkmap does not know the verzoek a notification named
        └── Ambiguous        a lookup found more than one candidate where one was required
"""

from __future__ import annotations

from datetime import datetime


class AdapterError(Exception):
    """Base of the adapter's own errors; its message is one readable line."""

    #: Retrying may succeed without anyone changing anything.
    transient: bool = False


class ConfigError(AdapterError):
    """The configuration file or the environment is not usable (names file, key and problem)."""


class StoreUnavailable(AdapterError):
    """The database cannot take or give data right now (connection, lock, disk)."""

    transient = True


class InputError(AdapterError):
    """A message or file that cannot be read as what it claims to be."""


class MappingError(AdapterError):
    """Mapping files that do not load, or a mapping that cannot apply to a verzoek."""


class LeaseLost(AdapterError):
    """Another worker claimed this delivery after our lease ran out (its fencing token moved on): this run
    stops before its next call and writes nothing, the new holder carries the delivery on. Never recorded
    as an attempt of its own, so ``transient`` does not apply."""


class TargetError(AdapterError):
    """A call to a far system failed; by default transient (network, timeout, 5xx, 429). ``status`` is the
    HTTP status of the answer, when there was one."""

    transient = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WaitingError(TargetError):
    """The delivery cannot run yet (e.g. an aanvulling whose aanvraag has no zaak yet). ``until``: a wait with
    a deadline of its own (postbus files: ``missing_hours``) is retried, never made ``dead``, before it."""

    def __init__(self, message: str, *, until: datetime | None = None) -> None:
        super().__init__(message)
        self.until = until


class TargetRefused(TargetError):
    """The far system refused the request (4xx) or answered something unusable: retrying the same
    request gives the same answer, so an operator must act (fix the mapping or the catalogus, resend)."""

    transient = False


class HintNotConfirmed(TargetRefused):
    """The werkmap answered 403/404 for the verzoek a verzoeknotificatie named (or a later notification of
    that verzoek took its place): the notification was a wrong hint, perhaps forged. It is kept as
    ``hint-refused`` and gives up the verzoek's duplicate key, so it never stops the real verzoek."""


class Ambiguous(TargetError):
    """A lookup that must find at most one object found several: choosing one would be a guess."""

    transient = False


def is_transient(exc: BaseException) -> bool:
    """Retry or not: our own errors say so by class; anything unexpected is retried (then dead)."""
    return exc.transient if isinstance(exc, AdapterError) else True


#: HTTP statuses that say "try again later": timeout, too early, too many requests, and every 5xx.
_RETRY_STATUSES = frozenset({408, 425, 429})


def http_failure(status: int, message: str) -> TargetError:
    """The error for an HTTP answer ``status`` >= 400: transient for 408/425/429/5xx, else refused."""
    if status >= 500 or status in _RETRY_STATUSES:
        return TargetError(message, status)
    return TargetRefused(message, status)
