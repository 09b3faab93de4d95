"""Digikoppeling transport (issue 8, item 1): TLS in ``serve``, the OIN allowlist per endpoint, the zender
checked against the certificate, the proxy-header mode through a real nginx, and the README's examples.

Everything runs over real TLS on 127.0.0.1 against a real ``serve`` subprocess (and Debian's nginx), with
certificates generated here: a test CA, a server certificate, client certificates carrying an OIN in the
subject serialNumber the PKIoverheid way, one without an OIN, and one from another CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import create_engine, text

from adapter.config import INTAKE_ENDPOINTS, Settings
from adapter.web.trust import identity_of, identity_of_header
from tests.conftest import (
    FIXTURES,
    NO_DELIVERY,
    ROOT,
    Server,
    drop_database,
    free_port,
    new_database_url,
    stop_process,
)
from tests.soap import LVO, Answer, fixture, with_reference

OLO = "00000001800866472000"  # the loket: allowed everywhere in the README examples
OTHER = "00000001234567890000"  # allowed on the SOAP endpoint of the "optional" server, not the zender
STRANGER = "00000009999999999000"  # a valid certificate, an OIN nobody allows
README = ROOT / "README.md"
AANVRAAG = "omvDi01AanbiedenAanvraag"
SOAP_ACTION = f'"{LVO}/{AANVRAAG}"'


# -- certificates ---------------------------------------------------------------------------------------------


def _name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


def _issue(
    subject: x509.Name,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _write(folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    crt, pem = folder / f"{name}.pem", folder / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def _client_subject(oin: str | None, org: str = "Omgevingsloket") -> x509.Name:
    attrs = [(NameOID.COUNTRY_NAME, "NL"), (NameOID.ORGANIZATION_NAME, org)]
    if oin:
        attrs.append((NameOID.SERIAL_NUMBER, oin))
    return _name(*attrs, (NameOID.COMMON_NAME, f"{org.lower().replace(' ', '')}.example.nl"))


@dataclass
class Pki:
    """The test's certificates, as files. ``clients``: name → (certificate, key)."""

    folder: Path
    ca: Path
    server: tuple[Path, Path]
    clients: dict[str, tuple[Path, Path]]

    def context(self, client: str | None = None) -> ssl.SSLContext:
        """A client TLS context that trusts our CA and, when named, presents that client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if client:
            ctx.load_cert_chain(*map(str, self.clients[client]))
        return ctx

    def pem(self, client: str) -> str:
        return self.clients[client][0].read_text()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _issue(_name((NameOID.COMMON_NAME, "Test PKIoverheid Private Services CA")), None, ca=True)
    other_ca = _issue(_name((NameOID.COMMON_NAME, "Some Other CA")), None, ca=True)
    ca_file, _ = _write(folder, "ca", *ca)
    server = _write(folder, "server", *_issue(_name((NameOID.COMMON_NAME, "127.0.0.1")), ca, server=True))
    clients = {
        "olo": _write(folder, "olo", *_issue(_client_subject(OLO), ca)),
        "other": _write(folder, "other", *_issue(_client_subject(OTHER, "Andere Gemeente"), ca)),
        "stranger": _write(folder, "stranger", *_issue(_client_subject(STRANGER, "Vreemde"), ca)),
        "no-oin": _write(folder, "no-oin", *_issue(_client_subject(None), ca)),
        # the allowed OIN, but issued by a CA we do not trust: must fail the handshake
        "other-ca": _write(folder, "other-ca", *_issue(_client_subject(OLO), other_ca)),
    }
    return Pki(folder, ca_file, server, clients)


# -- the README's examples ---------------------------------------------------------------------------------


def readme_block(name: str) -> str:
    """The fenced block right after ``<!-- transport example: NAME -->`` in the README."""
    m = re.search(rf"<!-- transport example: {name} -->\n```\w+\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert m, f"README has no transport example {name!r}"
    return m.group(1)


def replaced(text: str, *pairs: tuple[str, str]) -> str:
    """``text`` with each (old, new) replaced; an ``old`` the text lacks fails (the README drifted)."""
    for old, new in pairs:
        assert old in text, f"README example lacks {old!r}"
        text = text.replace(old, new)
    return text


def adapter_config(server_toml: str, db_url: str) -> str:
    """A complete config: the [server…] tables given, the rest as every server test uses."""
    return f"""{server_toml}
[store]
url = "{db_url}"
lock_timeout_ms = 800

{NO_DELIVERY}
[[stuf.ontvangers]]
organisatie = "00000001002564440000"
applicatie = "ZAAKSYSTEEM"

[[stuf.zenders]]
organisatie = "{OLO}"
applicatie = "OLO"
"""


def start_server(folder: Path, server_toml: str, pki: Pki, *, https: bool) -> Server:
    db_url = new_database_url(folder)
    port = int(m.group(1)) if (m := re.search(r"^port = (\d+)$", server_toml, re.M)) else 0
    config = folder / "config.toml"
    config.write_text(adapter_config(server_toml, db_url), encoding="utf-8")
    srv = Server(config=config, db_url=db_url, port=port, log_path=folder / "server.log")
    if https:
        srv.scheme = "https"
        srv.probe = {"verify": pki.context("olo")}
    srv.start()
    return srv


@dataclass
class Running:
    srv: Server
    pki: Pki

    def client(self, cert: str | None = None, **kw: object) -> httpx.Client:
        verify: ssl.SSLContext | bool = self.pki.context(cert) if self.srv.scheme == "https" else True
        return httpx.Client(base_url=self.srv.url, verify=verify, timeout=20, **kw)  # type: ignore[arg-type]

    def messages(self) -> int:
        engine = create_engine(self.srv.db_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM messages")).scalar_one())
        finally:
            engine.dispose()

    def log_lines(self, correlation_id: str) -> list[dict[str, object]]:
        lines = [json.loads(line) for line in self.srv.log_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("correlation_id") == correlation_id]


def soap(client: httpx.Client, body: bytes, path: str = "/soap/stuf-lvo") -> tuple[httpx.Response, Answer]:
    r = client.post(path, content=body, headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION})
    return r, Answer(r.status_code, r.content)


def aanvraag() -> bytes:
    return with_reference(fixture(AANVRAAG), f"T-{uuid.uuid4().hex[:20]}")


def notificatie() -> bytes:
    nummer = str(int(time.time() * 1000))[-13:]
    body = (FIXTURES / "stam" / "verzoeknotificatie-initieren.xml").read_bytes()
    return re.sub(rb"<vn:verzoeknummer>\d+<", b"<vn:verzoeknummer>" + nummer.encode() + b"<", body)


def assert_refused(run: Running, r: httpx.Response, reason: str, before: int) -> None:
    """403 problem+json naming ``reason``, one log line (and the access line), nothing parsed or stored."""
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert reason in r.json()["detail"], r.json()
    assert run.messages() == before  # a parsed body would have left a `rejected` row (log_rejected)
    deadline = time.monotonic() + 10  # the access line is written once the answer is sent: just after
    while len(lines := run.log_lines(r.headers["x-correlation-id"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # the refusal, then the access line of the same request (adapter/web/access.py): its 403, no body read
    assert [line["event"] for line in lines] == ["caller refused", "request"], lines
    assert (lines[1]["status"], lines[1]["oin"], lines[1]["bytes_sent"]) == (403, lines[0]["oin"], len(r.content))


def _raw_get(run: Running, cert: str | None) -> bytes:
    """GET /healthz over a bare TLS socket: what comes back, b"" when the server ended the connection in or
    right after the handshake (TLS 1.3: the client notices only at its first read)."""
    ctx = run.pki.context(cert)
    try:
        with (
            socket.create_connection(("127.0.0.1", run.srv.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
        ):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(1024)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return b""


def _handshake_refused(run: Running, cert: str | None) -> None:
    assert _raw_get(run, cert) == b""
    assert _raw_get(run, "olo").startswith(b"HTTP/1.1 200 "), "the same request with the loket's certificate"


# -- direct: the README configuration (client certificate required) ---------------------------------------


@pytest.fixture(scope="module")
def direct(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("direct")
    toml = replaced(
        readme_block("direct"),
        ('host = "0.0.0.0"', 'host = "127.0.0.1"\nenvironment = "production"'),  # JSON log lines
        ("port = 8443", f"port = {free_port()}"),
        ("/etc/loket-adapter/server.pem", str(pki.server[0])),
        ("/etc/loket-adapter/server.key", str(pki.server[1])),
        ("/etc/loket-adapter/pkio-ca.pem", str(pki.ca)),
    )
    srv = start_server(folder, toml, pki, https=True)
    yield Running(srv, pki)
    srv.stop()
    drop_database(srv.db_url)


def test_readme_direct_an_allowed_oin_gets_bv03(direct: Running) -> None:
    with direct.client("olo") as c:
        r, answer = soap(c, aanvraag())
    assert r.status_code == 200, r.text
    assert answer.payload.tag.endswith("Bv03Bericht")


def test_readme_direct_without_a_client_certificate_the_handshake_fails(direct: Running) -> None:
    _handshake_refused(direct, None)


def test_readme_direct_a_certificate_from_another_ca_fails_the_handshake(direct: Running) -> None:
    _handshake_refused(direct, "other-ca")
    with direct.client("olo") as c:  # and the server is none the worse for it
        assert c.get("/healthz").status_code == 200


def test_readme_direct_a_not_allowed_oin_is_refused_before_parsing(direct: Running) -> None:
    before = direct.messages()
    with direct.client("stranger") as c:
        r, _ = soap(c, b"<this is not XML, parsing it would be Fo03 StUF055 and a rejected row")
    assert_refused(direct, r, f"OIN {STRANGER} may not call /soap/stuf-lvo", before)
    assert direct.log_lines(r.headers["x-correlation-id"])[0]["oin"] == STRANGER


def test_readme_direct_wsdl_names_the_public_url_not_the_host_header(direct: Running) -> None:
    with direct.client("olo") as c:
        wsdl = c.get("/soap/stuf-lvo?wsdl", headers={"Host": "evil.example"}).text
    assert 'location="https://adapter.gemeente.nl:8443/soap/stuf-lvo"' in wsdl
    assert 'schemaLocation="https://adapter.gemeente.nl:8443/xsd/' in wsdl
    assert "evil.example" not in wsdl


# -- direct, client certificate optional: the allowlist does the refusing ---------------------------------


@pytest.fixture(scope="module")
def optional(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("optional")
    toml = f"""
[server]
host = "127.0.0.1"
port = {free_port()}
environment = "production"

[server.tls]
certfile = "{pki.server[0]}"
keyfile = "{pki.server[1]}"
client_ca = "{pki.ca}"
require_client_cert = false

[server.allowed_oins]
"/soap/stuf-lvo" = ["{OLO}", "{OTHER}"]
"/stam/verzoeknotificatie" = ["{OLO}"]
"""
    srv = start_server(folder, toml, pki, https=True)
    yield Running(srv, pki)
    srv.stop()
    drop_database(srv.db_url)


@pytest.mark.parametrize("path", INTAKE_ENDPOINTS)
def test_no_client_certificate_is_refused_before_parsing(optional: Running, path: str) -> None:
    before = optional.messages()
    with optional.client(None) as c:
        r = c.post(path, content=b"<not XML: parsing this would store a rejected message", headers={"SOAPAction": '""'})
    assert_refused(optional, r, "no client certificate", before)


def test_the_refusal_comes_before_the_body_is_read(optional: Running) -> None:
    """Headers announcing 1 MB and no body at all: the 403 comes at once, so the body was never waited for."""
    host, port = "127.0.0.1", optional.srv.port
    ctx = optional.pki.context("stranger")
    with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(
            b"POST /soap/stuf-lvo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            b'SOAPAction: ""\r\nContent-Length: 1000000\r\n\r\n<partial'
        )
        started = time.monotonic()
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 403 "), head
    assert time.monotonic() - started < 3


def test_a_certificate_without_an_oin_is_refused(optional: Running) -> None:
    before = optional.messages()
    cid = uuid.uuid4().hex
    with optional.client("no-oin", headers={"X-Correlation-ID": cid}) as c:
        r, _ = soap(c, aanvraag())
    assert r.headers["x-correlation-id"] == cid  # the caller's own id, as the channels keep it
    assert_refused(optional, r, "no subject serialNumber", before)


def test_an_allowed_oin_that_is_not_the_zender_gets_stuf013(optional: Running) -> None:
    """OTHER may call the endpoint, but the message says it comes from the loket (OLO)."""
    with optional.client("other") as c:
        r, answer = soap(c, aanvraag())
    assert r.status_code == 500 and answer.code == "StUF013", r.text
    assert f"niet het OIN van het certificaat ({OTHER})" in answer.fo03.findtext(".//{*}omschrijving", "")


def test_optional_an_allowed_oin_gets_bv03_and_stam_202(optional: Running) -> None:
    with optional.client("olo") as c:
        r, answer = soap(c, aanvraag())
        assert r.status_code == 200 and answer.payload.tag.endswith("Bv03Bericht"), r.text
        n = c.post("/stam/verzoeknotificatie", content=notificatie(), headers={"Content-Type": "application/xml"})
    assert n.status_code == 202, n.text


def test_stam_allowlist_is_its_own(optional: Running) -> None:
    """OTHER may post SOAP here, not notifications."""
    before = optional.messages()
    with optional.client("other") as c:
        r = c.post("/stam/verzoeknotificatie", content=notificatie(), headers={"Content-Type": "application/xml"})
    assert_refused(optional, r, f"OIN {OTHER} may not call /stam/verzoeknotificatie", before)


def test_unlisted_paths_stay_open_to_a_verified_caller(optional: Running) -> None:
    with optional.client("stranger") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/xsd/lvo/lvo0312.xsd").status_code == 200


# -- behind nginx: the README's proxy configuration and nginx block -----------------------------------------


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail("nginx is not installed (.ci/run installs nginx-light)")
        pytest.skip("nginx is not installed: apt-get install -y nginx-light (CI installs it)")
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"nginx exited: {log.read_text(errors='replace')[-2000:]}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not listen in 15 s")


@dataclass
class Proxied(Running):
    nginx_url: str

    def via_nginx(self, cert: str | None) -> httpx.Client:
        return httpx.Client(base_url=self.nginx_url, verify=self.pki.context(cert), timeout=20)


@pytest.fixture(scope="module")
def proxied(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    nginx = _nginx()
    folder = tmp_path_factory.mktemp("proxied")
    adapter_port, nginx_port = free_port(), free_port()
    toml = replaced(readme_block("proxy"), ("port = 8080", f'port = {adapter_port}\nenvironment = "production"'))
    site = replaced(
        readme_block("nginx"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{nginx_port} ssl;"),
        ("/etc/loket-adapter/server.pem", str(pki.server[0])),
        ("/etc/loket-adapter/server.key", str(pki.server[1])),
        ("/etc/loket-adapter/pkio-ca.pem", str(pki.ca)),
        ("http://127.0.0.1:8080", f"http://127.0.0.1:{adapter_port}"),
    )
    prefix = folder / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    temps = "".join(
        f"    {kind}_temp_path {prefix / 'tmp' / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "site.conf").write_text(site)
    # what a test run needs around the README's server block: no daemon, everything under the temp dir
    (prefix / "nginx.conf").write_text(
        f"""{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix / "access.log"};
{temps}    include {prefix / "site.conf"};
}}
"""
    )
    log = prefix / "error.log"
    check = subprocess.run(
        [nginx, "-t", "-e", str(log), "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    srv = start_server(folder, toml, pki, https=False)
    proc = subprocess.Popen([nginx, "-e", str(log), "-p", str(prefix), "-c", str(prefix / "nginx.conf")])
    try:
        _wait_port(nginx_port, proc, log)
        yield Proxied(srv, pki, f"https://127.0.0.1:{nginx_port}")
    finally:
        stop_process(proc)
        srv.stop()
        drop_database(srv.db_url)


def test_nginx_an_allowed_oin_gets_bv03(proxied: Proxied) -> None:
    with proxied.via_nginx("olo") as c:
        r, answer = soap(c, aanvraag())
        assert r.status_code == 200 and answer.payload.tag.endswith("Bv03Bericht"), r.text
        n = c.post("/stam/verzoeknotificatie", content=notificatie(), headers={"Content-Type": "application/xml"})
    assert n.status_code == 202, n.text


def test_nginx_a_not_allowed_oin_is_refused_by_the_adapter_before_parsing(proxied: Proxied) -> None:
    before = proxied.messages()
    with proxied.via_nginx("stranger") as c:
        r, _ = soap(c, b"<not XML at all")
    assert_refused(proxied, r, f"OIN {STRANGER} may not call /soap/stuf-lvo", before)


def test_nginx_without_a_client_certificate_answers_400_itself(proxied: Proxied) -> None:
    before, log_size = proxied.messages(), len(proxied.srv.log_text())
    with proxied.via_nginx(None) as c:
        r, _ = soap(c, aanvraag())
    assert r.status_code == 400 and "No required SSL certificate" in r.text
    assert proxied.messages() == before and len(proxied.srv.log_text()) == log_size  # the adapter saw nothing


def test_nginx_a_certificate_from_another_ca_is_refused_by_nginx(proxied: Proxied) -> None:
    with proxied.via_nginx("other-ca") as c:
        r, _ = soap(c, aanvraag())
    assert r.status_code == 400, r.text


def test_a_certificate_header_from_an_untrusted_address_is_ignored(proxied: Proxied) -> None:
    """Straight to the adapter from 127.0.0.2 (not a trusted proxy), with the loket's certificate in the header:
    ignored and logged, so the caller has no certificate and is refused."""
    before = proxied.messages()
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=proxied.srv.url, transport=transport, timeout=20) as c:
        r, _ = soap_with_header(c, quote(proxied.pki.pem("olo"), safe=""))
    assert_refused(proxied, r, "no client certificate", before)
    lines = [json.loads(x) for x in proxied.srv.log_text().splitlines() if x.startswith("{")]
    ignored = [x for x in lines if x["event"] == "client certificate header from an untrusted address ignored"]
    assert ignored and ignored[-1]["address"] == "127.0.0.2"


def test_the_header_from_the_trusted_address_counts(proxied: Proxied) -> None:
    """The other side of the same coin: from 127.0.0.1 the header is believed (hence: listen on 127.0.0.1 only)."""
    with httpx.Client(base_url=proxied.srv.url, timeout=20) as c:
        r, answer = soap_with_header(c, quote(proxied.pki.pem("olo"), safe=""))
        assert r.status_code == 200 and answer.payload.tag.endswith("Bv03Bericht"), r.text
        r, _ = soap_with_header(c, quote(proxied.pki.pem("stranger"), safe=""))
    assert r.status_code == 403


def soap_with_header(client: httpx.Client, cert_header: str) -> tuple[httpx.Response, Answer]:
    r = client.post(
        "/soap/stuf-lvo",
        content=aanvraag(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION, "X-Client-Cert": cert_header},
    )
    return r, Answer(r.status_code, r.content)


# -- reading the OIN, and the configuration ----------------------------------------------------------------


def _cert(subject: x509.Name) -> x509.Certificate:
    return _issue(subject, None)[0]


def test_the_oin_is_the_one_subject_serial_number_of_20_digits() -> None:
    assert identity_of(_cert(_client_subject(OLO))).oin == OLO
    assert identity_of(_cert(_client_subject(None))).problem == "client certificate has no subject serialNumber (OIN)"
    short = identity_of(_cert(_client_subject("12345")))
    assert short.oin is None and "not an OIN" in (short.problem or "")
    two = _name((NameOID.SERIAL_NUMBER, OLO), (NameOID.SERIAL_NUMBER, OTHER))
    assert identity_of(_cert(two)).oin is None
    # organizationIdentifier names a register entry (NTRNL-…), never read as the OIN
    org_id = _name((NameOID.ORGANIZATION_IDENTIFIER, f"NTRNL-{OLO}"), (NameOID.COMMON_NAME, "x"))
    assert identity_of(_cert(org_id)).oin is None


def test_a_forwarded_certificate_is_read_in_the_forms_proxies_send() -> None:
    pem = _cert(_client_subject(OLO)).public_bytes(serialization.Encoding.PEM).decode()
    assert identity_of_header(quote(pem, safe="")).oin == OLO  # nginx $ssl_client_escaped_cert
    assert identity_of_header(pem.replace("\n", " ")).oin == OLO  # Apache SSL_CLIENT_CERT in a header
    assert identity_of_header(pem.replace("\n", "\n\t")).oin == OLO  # nginx's old $ssl_client_cert
    assert identity_of_header("yes, trust me").problem == "client certificate header holds no PEM certificate"
    broken = pem.replace(pem.splitlines()[3], "A" * 64)
    assert identity_of_header(broken).oin is None


BASE = {"stuf": {"ontvangers": [{"organisatie": "00000001002564440000", "applicatie": "ZAAKSYSTEEM"}]}}


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"allowed_oins": {"/soap/stuf-lvo": [OLO]}}, "allowed_oins needs a client certificate"),
        ({"tls": {"certfile": "c", "client_ca": "a"}, "allowed_oins": {"/soap/other": [OLO]}}, "not an intake"),
        ({"tls": {"certfile": "c", "client_ca": "a"}, "allowed_oins": {"/soap/stuf-lvo": ["123"]}}, "not an OIN"),
        ({"tls": {"certfile": "c", "client_ca": "a"}, "allowed_oins": {"/soap/stuf-lvo": []}}, "empty list"),
        ({"tls": {"keyfile": "k"}}, "need certfile"),
        ({"tls": {"certfile": "c", "require_client_cert": True}}, "require_client_cert needs client_ca"),
        ({"proxy": {"client_cert_header": "X-Client-Cert"}}, "go together"),
        ({"proxy": {"client_cert_header": "X-Client-Cert", "trusted_proxies": ["nginx"]}}, "not an IP"),
        ({"proxy": {"client_cert_header": "X Cert", "trusted_proxies": ["10.0.0.1"]}}, "not an HTTP header"),
        ({"public_url": "adapter.gemeente.nl"}, "not an absolute http(s) URL"),
    ],
)
def test_a_transport_setting_without_effect_is_refused(server: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.model_validate({**BASE, "server": server})


def _serve_fails(config: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(config), "serve"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    return done.stderr.strip().splitlines()


def test_serve_stops_with_one_line_when_a_certificate_file_is_missing_or_wrong(tmp_path: Path, pki: Pki) -> None:
    """Checked before the store is opened: the database is never touched (so SQLite suffices here)."""
    db = tmp_path / "never.db"
    missing, garbage = tmp_path / "nope.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    config = tmp_path / "config.toml"
    for certfile in (missing, garbage):
        toml = f'[server]\nport = {free_port()}\n[server.tls]\ncertfile = "{certfile}"\nkeyfile = "{pki.server[1]}"\n'
        config.write_text(adapter_config(toml, f"sqlite:///{db}"))
        lines = _serve_fails(config)
        if certfile == missing:
            assert lines == [f"error: {config}: server.tls.certfile: {missing}: No such file or directory"]
        else:
            assert len(lines) == 1 and lines[0].startswith(
                f"error: {config}: server.tls.certfile/keyfile: not a usable certificate and key"
            ), lines
    assert not db.exists()


def test_without_public_url_the_wsdl_names_our_own_listen_address() -> None:
    from adapter.config import ServerSettings
    from adapter.web.transport import public_url

    assert public_url(ServerSettings(host="10.1.2.3", port=8080)) == "http://10.1.2.3:8080/"
    tls = {"certfile": "c"}
    assert public_url(ServerSettings.model_validate({"port": 8443, "tls": tls})) == "https://127.0.0.1:8443/"
    assert public_url(ServerSettings(public_url="https://a.nl/x")) == "https://a.nl/x/"


def test_every_intake_endpoint_is_a_route_of_the_app(inbound: object) -> None:
    """The allowlist keys are checked against INTAKE_ENDPOINTS: those must be the app's real paths."""
    from adapter.app import build_app

    app = build_app(inbound)  # type: ignore[arg-type]
    assert set(INTAKE_ENDPOINTS) <= {getattr(r, "path", None) for r in app.routes}


def test_the_example_configs_allowlist_is_valid_when_switched_on() -> None:
    """config.example.toml shows [server.allowed_oins] commented out (quoted keys the generic example test
    does not switch on): switched on, with a client_ca, it loads."""
    lines = (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines()
    on = [line[2:] if line.startswith('# "/') else line for line in lines]
    data = tomllib.loads("\n".join(on))
    assert set(data["server"]["allowed_oins"]) == set(INTAKE_ENDPOINTS)
    data["server"]["tls"] |= {"certfile": "server.pem", "client_ca": "ca.pem"}
    Settings.model_validate(data)


def test_check_config_loads_the_certificates_and_says_who_may_call(tmp_path: Path, pki: Pki) -> None:
    """check-config loads [server.tls] as serve does, and sums up the transport (store: SQLite, not the topic)."""
    toml = replaced(
        readme_block("direct"),
        ("/etc/loket-adapter/server.pem", str(pki.server[0])),
        ("/etc/loket-adapter/server.key", str(pki.server[1])),
        ("/etc/loket-adapter/pkio-ca.pem", str(pki.ca)),
    )
    config = tmp_path / "config.toml"
    config.write_text(adapter_config(toml, f"sqlite:///{tmp_path / 'adapter.db'}"))
    command = [sys.executable, "-m", "adapter", "--config", str(config), "check-config"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (
        "  transport  https, client certificate required; allowlist: /soap/stuf-lvo: 1 OIN(s); "
        "/stam/verzoeknotificatie: 1 OIN(s)"
    ) in done.stdout.splitlines()
    config.write_text(config.read_text().replace(str(pki.ca), str(tmp_path / "gone.pem")))
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {config}: server.tls.client_ca: {tmp_path / 'gone.pem'}: No such file or directory"
    ]
