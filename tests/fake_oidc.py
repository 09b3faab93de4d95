"""A fake OpenID Connect provider for the console's single sign-on tests, written from OpenID Connect Core 1.0
and RFC 7636 (PKCE), not from our client: discovery, an authorization endpoint that logs in whoever ``next_user``
is and redirects back with a code, a token endpoint that checks client authentication (client_secret_basic),
the code (once), the redirect_uri and the PKCE verifier, and the JWKS. ``tamper`` makes the next ID token
wrong in one way, to see that the client refuses it."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class FakeOidc:
    client_id: str
    client_secret: str
    redirect_uri: str
    issuer: str = ""  # set once it listens
    next_user: dict[str, Any] = field(default_factory=lambda: {"preferred_username": "jansen", "roles": []})
    #: "aud", "nonce", "expired", "key", "hs256", "issuer": what the next ID token gets wrong
    tamper: str | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )

    def discovery(self, _: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer.rstrip('/')}/authorize",
                "token_endpoint": f"{self.issuer.rstrip('/')}/token",
                "jwks_uri": f"{self.issuer.rstrip('/')}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def authorize(self, request: Request) -> Response:
        q = request.query_params
        problems = [
            k
            for k, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == self.client_id),
                ("redirect_uri", q.get("redirect_uri") == self.redirect_uri),
                ("scope", "openid" in q.get("scope", "").split()),
                ("state", bool(q.get("state"))),
                ("nonce", bool(q.get("nonce"))),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", len(q.get("code_challenge", "")) == 43),
            )
            if not ok
        ]
        if problems:
            return JSONResponse({"error": "invalid_request", "bad": problems}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "user": dict(self.next_user)}
        return RedirectResponse(f"{self.redirect_uri}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))  # urlencoded (RFC 6749, 4.1.3)
        self.token_requests.append(form)
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code")), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != grant["challenge"] or form.get("redirect_uri") != self.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": self._id_token(grant)})

    def _id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "248289761001",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **grant["user"],
        }
        t, self.tamper = self.tamper, None
        if t == "aud":
            claims["aud"] = "another-client"
        elif t == "nonce":
            claims["nonce"] = "a-nonce-of-another-login"
        elif t == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 600
        elif t == "issuer":
            claims["iss"] = "https://evil.example"
        if t == "hs256":  # signed with the client secret as an HMAC key: anyone with the secret could do this
            return jwt.encode(claims, self.client_secret, algorithm="HS256", headers={"kid": "k1"})
        key = self.other_key if t == "key" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    def jwks(self, _: Request) -> Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
