"""Structured logging: JSON in production, readable lines in development, personal data masked.

Every line of a message's life carries its ``correlation_id`` (bound in a context variable by the
channel that received it). Personal data never reaches a log line in clear: values under known
personal keys are masked; in every string, any nine-digit number that passes the BSN eleven-test, any
e-mail address and any Dutch telephone number are masked; and while a delivery works on a verzoek, the
personal values of that verzoek (names, addresses, contact details: ``redact_values``) are masked
wherever they appear, e.g. quoted back in a zaaksysteem's error. Texts we write ourselves name elements,
never values (``adapter.schemas.SchemaError``); this is the net under that.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Collection, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields, is_dataclass
from typing import Any

import structlog

#: Keys whose values are personal data (BSN, names, contact details).
PERSONAL_KEYS = frozenset(
    {
        "bsn",
        "inp.bsn",
        "voorletters",
        "voornamen",
        "voorvoegsel",
        "geslachtsnaam",
        "achternaam",
        "naam",
        "emailadres",
        "telefoonnummer",
        "geboortedatum",
        # the ZGW Zaken API's spelling (a rol's betrokkeneIdentificatie): what a ketensimulatie report shows
        "inpbsn",
        "voorvoegselgeslachtsnaam",
    }
)
_NINE_DIGITS = re.compile(r"(?<!\d)(\d{9})(?!\d)")
#: A token of hex digits this long is an identifier (correlation id, sha256, uuid part), not a BSN holder;
#: a btw-nummer such as NL999993653B01 (which carries a sole trader's BSN) is not hex and stays masked.
_HEX_ID = re.compile(r"[0-9a-fA-F]{12,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: 06-12345678, 0107654321, +31 6 12345678: ten digits from a leading 0 (or +31/0031 and nine); not part of
#: a longer number or word (an OIN, a uuid, a timestamp).
_PHONE = re.compile(r"(?<![\w.])(?:\+31|0031|0)(?:[ -]?\d){9}(?!\w)")
#: Model fields (``adapter.model``) whose values are personal, beyond ``PERSONAL_KEYS``.
PERSONAL_FIELDS = PERSONAL_KEYS | {"straatnaam", "postcode", "goropenbareruimtenaam", "aoapostcode"}  # + ZGW's
_REDACT: ContextVar[tuple[str, ...]] = ContextVar("loket_redact", default=())


def is_bsn(digits: str) -> bool:
    """The BSN eleven-test (9*d1 + 8*d2 + … + 2*d8 - 1*d9 divisible by 11)."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


def mask_text(text: str, keep: Collection[str] = ()) -> str:
    """Mask every BSN-shaped number in free text (e.g. an XSD error that quotes a value). ``keep``: numbers
    known not to be a BSN that pass the eleven-test all the same, such as the gemeente's own RSIN."""

    def masked(m: re.Match[str]) -> str:
        digits = m.group(1)
        if digits in keep or not is_bsn(digits) or _in_hex_id(text, m.start(), m.end()):
            return digits
        return "*********"

    return _NINE_DIGITS.sub(masked, text)


def _in_hex_id(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies inside a longer token that is an identifier of hex digits."""
    while start > 0 and text[start - 1].isalnum() and text[start - 1].isascii():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end].isascii():
        end += 1
    return end - start > 9 and _HEX_ID.fullmatch(text, start, end) is not None


def personal_values(obj: Any) -> set[str]:
    """The personal values in a model object (a ``Verzoek``): names, BSN, contact details, addresses."""
    out: set[str] = set()
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, str):
                if f.name in PERSONAL_FIELDS:
                    out.add(value)
            else:
                out |= personal_values(value)
    elif isinstance(obj, list | tuple):
        for item in obj:
            out |= personal_values(item)
    return out


def redact_values(values: Iterable[str | None]) -> None:
    """Mask these values in every log line (and in ``redact``) until the current ``correlation`` scope ends.
    Values under 4 characters are left (a huisletter, "ja"): masking them would garble every line."""
    found = {v.strip() for v in values if v and len(v.strip()) >= 4}
    if found:
        _REDACT.set(tuple(sorted(set(_REDACT.get()) | found, key=len, reverse=True)))


def redact(text: str) -> str:
    """``text`` with the values of ``redact_values``, BSNs, e-mail addresses and telephone numbers masked:
    for error texts that are stored as well as logged (a delivery's last error)."""
    for value in _REDACT.get():
        text = text.replace(value, "***")
    return _PHONE.sub("***", _EMAIL.sub("***@***", mask_text(text)))


def _mask_value(key: str, value: Any) -> Any:
    if key.lower() in PERSONAL_KEYS and value not in (None, ""):
        return "***"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


#: Our own identifiers: never personal, and masking a digit run in one would break tracing a request.
_OWN_IDS = frozenset({"correlation_id", "run_id", "message_id", "delivery_id"})


def mask_personal_data(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the last step before rendering, so nothing escapes it."""
    for key in list(event_dict):
        if key not in _OWN_IDS:
            event_dict[key] = _mask_value(key, event_dict[key])
    return event_dict


class _StderrLogger:
    """Writes rendered lines to the *current* ``sys.stderr`` (so pytest's capture and reassignment work)."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _add_name(logger: Any, _: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if getattr(logger, "name", ""):
        event_dict["logger"] = logger.name
    return event_dict


def configure_logging(environment: str = "development", level: str = "INFO") -> None:
    """Our own lines go through structlog's native, filtering pipeline (cheap: no stdlib LogRecord,
    no caller lookup); third-party stdlib loggers (uvicorn, alembic) are rendered the same way."""
    renderer: Any
    if environment == "production":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, _add_name, structlog.processors.format_exc_info, mask_personal_data, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=lambda name="", *_: _StderrLogger(name),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # a library's warning (deprecation, an insecure setting) becomes a log line like any other: rendered,
    # masked, JSON in production, instead of warnings' own plain text on stderr
    # (off first: a second call re-installs it over whatever replaced ``warnings.showwarning`` since)
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    # spyne logs a traceback at ERROR for every Fault and echoes invalid input in full; our own
    # channel logs each fault once at WARNING, without personal data.
    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def correlation(correlation_id: str | None = None, **extra: Any) -> Iterator[str]:
    """Bind a correlation id (and extra fields) to every log line in this context."""
    cid = correlation_id or new_correlation_id()
    tokens = structlog.contextvars.bind_contextvars(correlation_id=cid, **extra)
    redacted = _REDACT.set(_REDACT.get())  # what ``redact_values`` adds in here ends with the scope
    try:
        yield cid
    finally:
        _REDACT.reset(redacted)
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry ``logger=<name>``."""
    return structlog.get_logger(name)  # lazy: takes the configuration in force at first use
