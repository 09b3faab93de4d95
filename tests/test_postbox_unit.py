"""Postbus names and connection failures without a server: odd names are refused with the reason; a
postbox that refuses connections is a transient error and the next connect waits (backoff)."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from pathlib import Path

import pytest

from adapter.config import PostboxSettings
from adapter.errors import is_transient
from adapter.postbox.client import Postbox, PostboxError
from adapter.postbox.names import candidate_names, parse_name
from tests.conftest import free_port

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../1234567_x.pdf", "path separator"),
        ("1234567_..%2f..", "'..'"),
        ("1234567_a/b.pdf", "path separator"),
        ("1234567_a\\b.pdf", "path separator"),
        ("..", "'..'"),
        (".ssh", "dot"),
        ("1234567_a\x00b", "control"),
        ("1234567_\u202egnp.exe", "control or invisible"),
        (" 1234567_x.pdf", "white space"),
        ("1234567_", "not <aanvraagnummer>_<bestandsnaam>"),
        ("Bouwtekening.pdf", "not <aanvraagnummer>_<bestandsnaam>"),
        ("12 34_x.pdf", "not an aanvraagnummer"),
        ("1234567_" + "x" * 250, "255"),
    ],
)
def test_odd_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=why if why != "'..'" else "'\\.\\.'"):
        parse_name(name)


def test_names_split_at_the_first_underscore() -> None:
    n = parse_name("1234567_1234567_Foto voorgevel (2).jpg")
    assert (n.aanvraagnummer, n.bestandsnaam) == ("1234567", "1234567_Foto voorgevel (2).jpg")
    assert candidate_names("1234567", "1234567_Foto.jpg") == ("1234567_1234567_Foto.jpg", "1234567_Foto.jpg")
    assert candidate_names("1234567", "Foto.jpg") == ("1234567_Foto.jpg",)


def test_a_refused_connection_is_transient_and_the_next_connect_waits() -> None:
    port = free_port()  # nothing listens there
    s = PostboxSettings(
        host="127.0.0.1", port=port, user="u", password="p", host_key=HOST_KEY, timeout=2, reconnect_initial=30
    )
    pb = Postbox("olo", s)
    with pytest.raises(PostboxError, match=f"cannot connect to 127.0.0.1:{port}") as first:
        pb.list_inbox()
    assert is_transient(first.value)
    t0 = time.monotonic()
    with pytest.raises(PostboxError, match=r"reconnecting to .* in 30 s"):
        pb.list_inbox()
    assert time.monotonic() - t0 < 1  # no new attempt inside the backoff


def test_a_postbox_needs_a_login_and_a_readable_host_key() -> None:
    with pytest.raises(ValueError, match="key_file or password"):
        PostboxSettings(host="h", user="u", host_key=HOST_KEY)
    with pytest.raises(ValueError, match="not a public host key"):
        PostboxSettings(host="h", user="u", password="p", host_key="SHA256:abc")
    with pytest.raises(ValueError, match="not a usable remote directory"):
        PostboxSettings(host="h", user="u", password="p", host_key=HOST_KEY, inbox="../etc")


def test_stuf_zkn_sends_the_bytes_of_a_bijlage_from_the_file_store(tmp_path: Path) -> None:
    """A postbus (or werkmap) file is in the file store, not inline: a StUF-ZKN zaaksysteem gets its bytes."""
    import adapter.targets.stuf_zkn.messages as m
    from tests.test_stuf_zkn_target import ctx, opdracht, verzoek

    v = verzoek()
    d = opdracht(v).documenten[0]
    path = tmp_path / "file"
    path.write_bytes(b"postbus bytes")
    d = replace(d, bijlage=replace(d.bijlage, inhoud=None, bestand=str(path), grootte=13))
    for dialect in ("zds-1.1", "zds-1.2"):
        doc = m.voeg_zaakdocument_toe(ctx(dialect), d, v, "DOC-1", ["ZAAK-000001"], "J.A. Berg").body
        inhoud = doc.find("ZKN:object/ZKN:inhoud", {"ZKN": m.ZKN})
        assert inhoud is not None and base64.b64decode(inhoud.text or "") == b"postbus bytes"
