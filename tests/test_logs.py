"""Logging: the BSN eleven-test, masking of personal data and the production (JSON) pipeline."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from adapter.logs import configure_logging, correlation, get_logger, is_bsn, mask_text

BSN = "999993653"  # a test BSN that passes the eleven-test


@pytest.mark.parametrize("digits", ["999993653", "111222333", "123456782", "012345672", "100000009"])
def test_is_bsn_accepts_numbers_passing_the_eleven_test(digits: str) -> None:
    assert is_bsn(digits)


@pytest.mark.parametrize(
    "digits",
    [
        "000000000",  # passes the arithmetic, but is no BSN
        "123456789",
        "999993654",
        "999993652",
        "12345678",  # 8 digits
        "1234567820",  # 10 digits
        "99999365a",
        "",
        " 99999365",
    ],
)
def test_is_bsn_rejects(digits: str) -> None:
    assert not is_bsn(digits)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"aanvrager {BSN} heeft", "aanvrager ********* heeft"),
        (f"bsn={BSN}", "bsn=*********"),
        (f"<LVO:bsn>{BSN}</LVO:bsn>", "<LVO:bsn>*********</LVO:bsn>"),
        (f"{BSN},111222333", "*********,*********"),
        (f"NL{BSN}B01", "NL*********B01"),
        # Left alone: not passing the eleven-test, part of a longer number (an OIN), or no BSN at all.
        ("kenmerk 123456789", "kenmerk 123456789"),
        ("OIN 00000001800866472000", "OIN 00000001800866472000"),
        (f"1{BSN}", f"1{BSN}"),
        (f"{BSN}0", f"{BSN}0"),
        ("000000000", "000000000"),
        ("postcode 1234AB", "postcode 1234AB"),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


# -- the configured pipeline -----------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put logging back as it was, so other tests see no difference."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("spyne", "uvicorn.access", "tests.thirdparty")}
    config = structlog.get_config()
    yield
    structlog.reset_defaults()
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def test_production_lines_are_json_with_correlation_id_and_masked(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("production")
    log = get_logger("tests.logs")
    with correlation("c0ffee", channel="stuf-lvo") as cid:
        assert cid == "c0ffee"
        log.info(
            f"aanvraag van {BSN} ontvangen",
            bsn=BSN,
            geslachtsnaam="Berg",
            Voornamen="Jan",
            nummer="1234567",
            oin="00000001800866472000",
            size=1234,
            details={"emailadres": "j@example.org", "tekst": f"burger {BSN}"},
        )
    log.warning("after the message")
    out = capsys.readouterr().err
    assert BSN not in out
    assert "Berg" not in out and "Jan" not in out and "j@example.org" not in out

    inside, after = json_lines(out)
    assert inside["event"] == "aanvraag van ********* ontvangen"
    assert inside["correlation_id"] == "c0ffee"
    assert inside["channel"] == "stuf-lvo"
    assert inside["bsn"] == "***"
    assert inside["geslachtsnaam"] == "***"
    assert inside["Voornamen"] == "***"  # keys match case-insensitively
    assert inside["details"] == {"emailadres": "***", "tekst": "burger *********"}
    # Not personal: kept as they are.
    assert inside["nummer"] == "1234567"
    assert inside["oin"] == "00000001800866472000"
    assert inside["size"] == 1234
    assert inside["level"] == "info"
    assert inside["logger"] == "tests.logs"
    assert "timestamp" in inside

    assert after["event"] == "after the message"
    assert after["level"] == "warning"
    assert "correlation_id" not in after
    assert "channel" not in after


def test_correlation_generates_ids_and_nests(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("production")
    log = get_logger("tests.logs")
    with correlation() as outer:
        assert re.fullmatch(r"[0-9a-f]{32}", outer)
        with correlation() as inner:
            assert inner != outer
            log.info("inner")
        log.info("outer")
    a, b = json_lines(capsys.readouterr().err)
    assert (a["event"], a["correlation_id"]) == ("inner", inner)
    assert (b["event"], b["correlation_id"]) == ("outer", outer)


def test_exceptions_and_stdlib_loggers_are_masked_too(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("production")
    log = get_logger("tests.logs")
    with correlation("feed"):
        try:
            raise ValueError(f"burger {BSN} onbekend")
        except ValueError:
            log.exception("verwerking mislukt")
        # A third-party library logging through the standard library ends up in the same pipeline.
        logging.getLogger("tests.thirdparty").warning("lookup of %s failed", BSN)
    out = capsys.readouterr().err
    assert BSN not in out
    exc_line, stdlib_line = json_lines(out)
    assert exc_line["event"] == "verwerking mislukt"
    assert exc_line["level"] == "error"
    assert "ValueError: burger ********* onbekend" in exc_line["exception"]
    assert stdlib_line["event"] == "lookup of ********* failed"
    assert stdlib_line["level"] == "warning"
    assert stdlib_line["logger"] == "tests.thirdparty"
    assert stdlib_line["correlation_id"] == "feed"


def test_level_filters(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("production", "WARNING")
    log = get_logger("tests.logs")
    log.info("not shown")
    log.warning("shown")
    logging.getLogger("tests.thirdparty").info("not shown either")
    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["shown"]


def test_development_lines_are_readable_and_masked(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("development")
    with correlation("abc123"):
        get_logger("tests.logs").info(f"bericht {BSN}", geslachtsnaam="Berg", nummer="1234567")
    (line,) = capsys.readouterr().err.splitlines()
    assert not line.startswith("{")
    assert "bericht *********" in line
    assert "correlation_id=abc123" in line
    assert "nummer=1234567" in line
    assert BSN not in line and "Berg" not in line


def test_a_correlation_id_with_a_bsn_shaped_digit_run_is_logged_whole(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    # "099995645" passes the eleven-test; inside a hex id it is no BSN (this masked 1 id in ~100 before)
    configure_logging("production")
    cid = "8fb2d5b6431e4568a2fee099995645fe"
    with correlation(cid):
        get_logger("tests.logs").info("traced", ref=f"doc-{cid}")
    (line,) = json_lines(capsys.readouterr().err)
    assert line["correlation_id"] == cid and line["ref"] == f"doc-{cid}"
    assert mask_text("bsn 099995645.") == "bsn *********."  # standing alone it is still masked
    assert mask_text("btw NL099995645B01") == "btw NL*********B01"  # and in a btw-nummer (not hex)
