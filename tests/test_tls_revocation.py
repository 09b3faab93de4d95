"""Certificate revocation in `serve`'s own TLS (``[server.tls] crlfile``): a revoked client certificate fails
the handshake, a valid one of the same CA passes; a CRL file that is not one stops the start in one line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.conftest import drop_database, free_port
from tests.test_cli import cli, one_error_line
from tests.test_transport_trust import (
    OLO,
    Pki,
    Running,
    _client_subject,
    _handshake_refused,
    _issue,
    _name,
    _raw_get,
    _write,
    start_server,
)


@pytest.fixture(scope="module")
def revoking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Path]]:
    folder = tmp_path_factory.mktemp("crl")
    ca = _issue(_name((NameOID.COMMON_NAME, "Test PKIoverheid CA with a CRL")), None, ca=True)
    ca_file, _ = _write(folder, "ca", *ca)
    server = _write(folder, "server", *_issue(_name((NameOID.COMMON_NAME, "127.0.0.1")), ca, server=True))
    valid, revoked = _issue(_client_subject(OLO), ca), _issue(_client_subject(OLO), ca)
    clients = {"olo": _write(folder, "olo", *valid), "revoked": _write(folder, "revoked", *revoked)}
    now = dt.datetime.now(dt.UTC)
    entry = x509.RevokedCertificateBuilder().serial_number(revoked[0].serial_number).revocation_date(now).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca[0].subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(entry)
        .sign(ca[1], hashes.SHA256())
    )
    crl_file = folder / "crl.pem"
    crl_file.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    pki = Pki(folder, ca_file, server, clients)
    toml = (
        f'[server]\nhost = "127.0.0.1"\nport = {free_port()}\nenvironment = "production"\n'
        f'[server.tls]\ncertfile = "{server[0]}"\nkeyfile = "{server[1]}"\nclient_ca = "{ca_file}"\n'
        f'crlfile = "{crl_file}"\nrequire_client_cert = true\n'
    )
    srv = start_server(folder, toml, pki, https=True)
    yield Running(srv, pki), folder
    srv.stop()
    drop_database(srv.db_url)


def test_a_revoked_client_certificate_fails_the_handshake(revoking: tuple[Running, Path]) -> None:
    run, _ = revoking
    _handshake_refused(run, "revoked")  # and the same request with the valid certificate of that CA: 200


def test_a_valid_certificate_of_the_same_ca_passes(revoking: tuple[Running, Path]) -> None:
    run, _ = revoking
    assert _raw_get(run, "olo").startswith(b"HTTP/1.1 200 ")


def test_a_crlfile_that_is_no_crl_stops_the_start_in_one_line(revoking: tuple[Running, Path]) -> None:
    run, folder = revoking
    bad = folder / "not-a-crl.pem"
    bad.write_text("no CRL here\n")
    config = folder / "bad.toml"
    config.write_text(run.srv.config.read_text().replace(str(folder / "crl.pem"), str(bad)), encoding="utf-8")
    line = one_error_line(cli("--config", config, "check-config"))
    assert line.startswith(f"error: {config}: server.tls.crlfile: not a PEM CRL"), line
