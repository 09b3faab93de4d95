"""How stored values read to people, the same in the CLI and the console: times in UTC, first lines cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def as_utc(value: datetime) -> datetime:
    """A stored timestamp in UTC (SQLite gives naive UTC, PostgreSQL the session's time zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_text(value: datetime | None) -> str:
    """A stored timestamp as UTC text, ``-`` for none."""
    return "-" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def short(text: str | None, width: int = 60) -> str | None:
    """The first line of ``text``, at most ``width`` characters (``…`` when cut)."""
    if not text:
        return None
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def parse_moment(value: str) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or an age like 30m, 12h, 7d back from now, as UTC."""
    value = value.strip()
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("use an ISO date/time or an age like 30m, 12h, 7d") from None
    # SQLite stores received_at as UTC wall-clock text and compares as text: the bound value must be UTC too.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
