"""The OpenID Connect provider of the console's optional single sign-on: the one client module for it.

Authorization code flow with PKCE (S256), state and nonce (``adapter.store.sessions.begin_login``). The ID token
is checked by PyJWT against the provider's published keys: signature with an asymmetric algorithm the provider
announces (never ``none`` or a shared-secret HMAC), issuer exactly as configured, audience this client (and
``azp`` when there are more), expiry, and the nonce of this login. The role comes from a claim; an account
whose roles name neither console role is refused.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from adapter.config import OidcSettings
from adapter.store.sessions import PendingLogin
from adapter.store.users import Role

#: Asymmetric signatures only: with HS256 anyone holding the client secret could mint tokens.
SAFE_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60  # clock skew between the provider and us


class OidcError(Exception):
    """Why a login with the provider failed, in one line for the login page (no token content)."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


def code_challenge(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); None when any step is missing."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def role_of(roles: Any, settings: OidcSettings) -> Role | None:
    """beheerder when any of ``beheerder_roles`` is held, else operator for ``operator_roles``, else None."""
    held = set(roles.split()) if isinstance(roles, str) else {str(r) for r in roles or [] if isinstance(r, str)}
    if held & set(settings.beheerder_roles):
        return Role.BEHEERDER
    if held & set(settings.operator_roles):
        return Role.OPERATOR
    return None


class OidcClient:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._provider: Provider | None = None
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def provider(self) -> Provider:
        """The discovery document, fetched once (a failure is retried at the next login)."""
        with self._lock:
            if self._provider is None:
                self._provider = self._discover()
                self._keys = jwt.PyJWKClient(self._provider.jwks_uri, timeout=int(self.settings.timeout) or 1)
            return self._provider

    def _discover(self) -> Provider:
        # OpenID Connect Discovery 1.0, section 4: the issuer without a trailing "/", then the well-known path
        url = f"{self.settings.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            r = httpx.get(url, timeout=self.settings.timeout)
        except httpx.HTTPError as exc:
            raise OidcError(f"the login provider is unreachable ({type(exc).__name__})") from None
        if r.status_code != 200:
            raise OidcError(f"the login provider's discovery document answered HTTP {r.status_code}")
        try:
            doc = r.json()
            provider = Provider(
                issuer=doc["issuer"],
                authorization_endpoint=doc["authorization_endpoint"],
                token_endpoint=doc["token_endpoint"],
                jwks_uri=doc["jwks_uri"],
                algorithms=tuple(
                    a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"]) if a in SAFE_ALGORITHMS
                ),
            )
        except (ValueError, KeyError, TypeError):
            raise OidcError("the login provider's discovery document is not usable") from None
        if provider.issuer != self.settings.issuer:  # OpenID Connect Discovery 1.0, section 4.3
            raise OidcError(f"the login provider calls itself {provider.issuer!r}, not the configured issuer")
        if not provider.algorithms:
            raise OidcError("the login provider signs ID tokens with no asymmetric algorithm")
        return provider

    def authorize_url(self, login: PendingLogin) -> str:
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_url,
            "scope": " ".join(self.settings.scopes),
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": code_challenge(login.verifier),
            "code_challenge_method": "S256",
        }
        endpoint = self.provider().authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    def finish(self, code: str, login: PendingLogin) -> tuple[str, Role]:
        """Trade the code for an ID token, check it, and return (account name, role)."""
        provider = self.provider()
        s = self.settings
        try:
            r = httpx.post(
                provider.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": s.redirect_url,
                    "code_verifier": login.verifier,
                },
                auth=(s.client_id, s.client_secret),
                timeout=s.timeout,
            )
        except httpx.HTTPError as exc:
            raise OidcError(f"the login provider is unreachable ({type(exc).__name__})") from None
        if r.status_code != 200:
            raise OidcError(f"the login provider refused the code (HTTP {r.status_code})")
        try:
            id_token = r.json()["id_token"]
        except (ValueError, KeyError, TypeError):
            raise OidcError("the login provider's answer has no ID token") from None
        claims = self._verified(id_token, provider, login.nonce)
        name = claim(claims, s.name_claim)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise OidcError(f"the ID token has no usable {s.name_claim!r} claim")
        role = role_of(claim(claims, s.roles_claim), s)
        if role is None:
            raise OidcError(f"account {name!r} holds none of the console's roles (claim {s.roles_claim!r})")
        return f"oidc:{name.strip()}", role

    def _verified(self, id_token: str, provider: Provider, nonce: str) -> dict[str, Any]:
        assert self._keys is not None
        try:
            key = self._keys.get_signing_key_from_jwt(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=list(provider.algorithms),
                audience=self.settings.client_id,
                issuer=provider.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientError:
            raise OidcError("the ID token's signing key is not among the login provider's keys") from None
        except jwt.InvalidTokenError as exc:
            raise OidcError(f"the ID token is not valid: {exc}") from None
        if claims.get("nonce") != nonce:
            raise OidcError("the ID token is not for this login (nonce)")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcError("the ID token was issued to another client (azp)")
        return claims
