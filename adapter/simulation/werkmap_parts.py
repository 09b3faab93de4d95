"""Helpers of the fake werkmap: documents generated on the fly (a 2 GB document never exists in memory
or on disk), HTTP byte ranges, and TLS serving with a throwaway self-signed certificate."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapter.simulation.serving import serve_in_thread

BLOCK = 64 * 1024


def document_bytes(document_id: str, size: int, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Bytes [start, end) of the fake file ``document_id`` of ``size`` bytes, in chunks of at most 64 KiB.

    One pseudo-random 64 KiB block per document, each copy stamped with its block index, so content at a
    wrong offset (a bad resume) never looks right."""
    end = size if end is None else min(end, size)
    base = random.Random(hashlib.sha256(document_id.encode()).digest()).randbytes(BLOCK)
    pos = start
    while pos < end:
        index, offset = divmod(pos, BLOCK)
        chunk = (index.to_bytes(8, "big") + base[8:])[offset : min(BLOCK, offset + end - pos)]
        yield chunk
        pos += len(chunk)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of one ``bytes=`` range; None = ignore the header (RFC 9110: serve 200).
    Raises ValueError when the range cannot be satisfied (416)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or not (m[1] or m[2]):
        return None
    if m[1]:
        start = int(m[1])
        if m[2] and int(m[2]) < start:
            return None
        end = min(int(m[2]) + 1, size) if m[2] else size
    else:
        start, end = max(size - int(m[2]), 0), size
        if int(m[2]) == 0:
            raise ValueError("empty suffix range")
    if start >= size:
        raise ValueError("range starts beyond the end")
    return start, end


def serve_tls_in_thread(
    app: Any, certfile: str | Path, keyfile: str | Path, *, client_ca: str | Path | None = None, timeout: float = 10.0
) -> tuple[str, Callable[[], None]]:
    """HTTPS variant of ``serve_in_thread``; with ``client_ca`` a client certificate signed by it is required."""
    return serve_in_thread(app, timeout=timeout, certfile=certfile, keyfile=keyfile, client_ca=client_ca)


def make_self_signed_cert(directory: Path, *, name: str = "werkmap", oin: str | None = None) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 / localhost, usable as server cert, client cert and
    its own CA (tests only). ``oin`` goes in the subject serialNumber, as in PKIoverheid certificates.
    Writes ``<name>.crt`` and ``<name>.key`` (PEM, key unencrypted) and returns their paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]
    if oin:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
    subject = x509.Name(attrs)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / f"{name}.crt", directory / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keyfile.chmod(0o600)
    return certfile, keyfile
