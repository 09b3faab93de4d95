"""ZGW practice: a bearer JWT (HS256) per `client_id`, signed with a secret both sides share.

HS256 is a few lines of stdlib, so the fake needs no JWT library (PyJWT would also warn on every call
about the short secrets test setups use).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

LEEWAY = 60  # seconds of clock skew tolerated on iat/exp


class AuthError(Exception):
    """The request is not authorised; the message says why (it goes into the 403 problem body)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(client_id: str = "loket-adapter", secret: str = "test-secret", **claims: Any) -> str:
    """A token the way ZGW clients build one (HS256; `client_id`, `iss`, `iat`, extra claims)."""
    payload = {"iss": client_id, "client_id": client_id, "iat": int(time.time()), **claims}
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def decode_token(token: str, secret: str) -> dict[str, Any]:
    """The verified claims of an HS256 token; AuthError when anything is off."""
    try:
        head_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(_unb64(head_b64))
        payload = json.loads(_unb64(payload_b64))
        signature = _unb64(sig_b64)
    except ValueError as exc:
        raise AuthError(f"Malformed JWT: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise AuthError("JWT alg must be HS256.")
    expected = hmac.new(secret.encode(), f"{head_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise AuthError("JWT signature does not verify with the configured secret.")
    if not isinstance(payload, dict):
        raise AuthError("JWT payload is not an object.")
    iat = payload.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise AuthError("JWT lacks a numeric iat claim.")
    if iat > time.time() + LEEWAY:
        raise AuthError("JWT iat lies in the future.")
    exp = payload.get("exp")
    if isinstance(exp, int | float) and exp < time.time() - LEEWAY:
        raise AuthError("JWT has expired.")
    return payload


def check_authorization(header: str | None, *, client_id: str, secret: str) -> None:
    """Raise AuthError unless `header` is ``Bearer <JWT>`` signed with `secret` for `client_id`."""
    if not header:
        raise AuthError("Authenticatiegegevens zijn niet opgegeven (no Authorization header).")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header is not 'Bearer <JWT>'.")
    claims = decode_token(token.strip(), secret)
    if claims.get("client_id") != client_id:
        raise AuthError(f"Unknown client_id {claims.get('client_id')!r}.")
