"""The one typed configuration object, loaded from TOML with secrets taken from the environment.

Any string value of the form ``${NAME}`` or ``${NAME:-default}`` (or containing it) is replaced by the
environment variable ``NAME`` at load time, so passwords and database URLs never need to be in the file
(``adapter.envsubst``: URL-encoding, deferred and development values). Every problem is
reported as one line that names the file, the key and what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from adapter.envsubst import Report, expand
from adapter.errors import ConfigError
from adapter.xmlsafe import Limits

#: Why ``store.url`` (and ``make_engine``) refuse an in-memory SQLite database: acknowledged messages would live
#: only as long as the process.
IN_MEMORY = "an in-memory SQLite store loses every acknowledged message when the process ends: use sqlite:///FILE"


def sqlite_beside(url: str, source: str) -> str:
    """A SQLite URL whose file is relative made absolute against the folder of the config file ``source``
    (the working directory for ``<defaults>``); any other URL as it is."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    file = sqlite_file(u.database) if u.get_backend_name() == "sqlite" else None
    if file is None or Path(file).expanduser().is_absolute():
        return url
    base = Path.cwd() if source == "<defaults>" else Path(source).resolve().parent
    return u.set(database=str(base / file)).render_as_string(hide_password=False)


def sqlite_file(database: str | None) -> str | None:
    """The file a SQLite URL's database part names, or None for an in-memory one (``sqlite://``,
    ``sqlite:///:memory:``)."""
    return None if database in (None, "", ":memory:") else database


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The endpoints that take messages in; each may get its own list of allowed caller OINs
#: (``[server.allowed_oins]``). A later intake endpoint joins by being listed here.
INTAKE_ENDPOINTS = ("/soap/stuf-lvo", "/stam/verzoeknotificatie")
#: The zaaksysteem's endpoints (``adapter.advies.web``): they need ``[advies] api_token`` and may also be
#: limited to OINs in ``[server.allowed_oins]``.
ZAAKSYSTEEM_ENDPOINTS = ("/advies/adviesverzoeken", "/advies/intrekken", "/zgw/notificaties")
_OIN = re.compile(r"^[0-9]{20}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


class ServerTlsSettings(_Section):
    """``serve`` terminating TLS itself (Digikoppeling 2-way TLS). Paths relative to the config file."""

    #: PEM server certificate (with its chain); with ``keyfile`` it makes ``serve`` speak HTTPS only.
    certfile: str | None = None
    #: PEM private key of ``certfile``; leave out when the certfile holds the key.
    keyfile: str | None = None
    #: PEM bundle of the CAs whose client certificates are accepted (e.g. the PKIoverheid private root and
    #: its intermediates). A client certificate not issued under one of them fails the TLS handshake.
    client_ca: str | None = None
    #: true: a caller without a valid client certificate fails the handshake. false: it may connect, but an
    #: endpoint in ``[server.allowed_oins]`` still refuses it (403).
    require_client_cert: bool = False
    #: PEM file with the current CRL of every CA in ``client_ca`` that issues client certificates (e.g.
    #: PKIoverheid's, fetched daily by cron): a revoked certificate then fails the handshake. With it set,
    #: a certificate whose issuer has no CRL in the file fails too. Re-read when ``serve`` starts.
    crlfile: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServerTlsSettings:
        if (self.keyfile or self.client_ca) and not self.certfile:
            raise ValueError("keyfile and client_ca need certfile (the server certificate)")
        if self.crlfile and not self.client_ca:
            raise ValueError("crlfile needs client_ca (the CAs whose revocations it lists)")
        if self.require_client_cert and not self.client_ca:
            raise ValueError("require_client_cert needs client_ca (the CAs whose client certificates count)")
        return self


class ServerProxySettings(_Section):
    """Behind a TLS proxy (nginx) that checks the client certificate and passes it on in a header."""

    #: Header holding the verified client certificate as URL-encoded PEM (nginx ``$ssl_client_escaped_cert``).
    #: Default: none, no proxy is trusted.
    client_cert_header: str | None = None
    #: Addresses or CIDR ranges of the proxies whose header counts; the header from any other address is
    #: ignored (and logged).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("client_cert_header")
    @classmethod
    def _header_name(cls, name: str | None) -> str | None:
        if name is not None and not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not an HTTP header name")
        return name

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or CIDR range") from None
        return values

    @model_validator(mode="after")
    def _both_or_neither(self) -> ServerProxySettings:
        if bool(self.client_cert_header) != bool(self.trusted_proxies):
            raise ValueError("client_cert_header and trusted_proxies go together")
        return self


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    #: ``development`` logs readable lines, ``production`` one JSON object per line.
    environment: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: The address the loket uses to reach us (``https://adapter.gemeente.nl/``): our WSDL names it. Default:
    #: derived from ``host``, ``port`` and whether ``[server.tls]`` is on, never from a request's Host header.
    public_url: str | None = None
    tls: ServerTlsSettings = Field(default_factory=ServerTlsSettings)
    proxy: ServerProxySettings = Field(default_factory=ServerProxySettings)
    #: Per intake endpoint, the OINs (client certificate subject serialNumber) that may call it; others get
    #: 403 before their body is read. An endpoint not listed accepts every caller.
    allowed_oins: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("public_url")
    @classmethod
    def _absolute(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", url):
            raise ValueError("not an absolute http(s) URL without query")
        return url if url is None or url.endswith("/") else url + "/"

    @field_validator("allowed_oins")
    @classmethod
    def _oins(cls, allowed: dict[str, list[str]]) -> dict[str, list[str]]:
        for endpoint, oins in allowed.items():
            if endpoint not in INTAKE_ENDPOINTS + ZAAKSYSTEEM_ENDPOINTS:
                known = ", ".join(INTAKE_ENDPOINTS + ZAAKSYSTEEM_ENDPOINTS)
                raise ValueError(f"{endpoint!r} is not an intake endpoint ({known})")
            if not oins:
                raise ValueError(f"{endpoint}: empty list (leave the endpoint out to accept every caller)")
            for oin in oins:
                if not _OIN.match(oin):
                    raise ValueError(f"{endpoint}: {oin!r} is not an OIN (20 digits)")
        return allowed

    @model_validator(mode="after")
    def _callers_can_be_known(self) -> ServerSettings:
        if self.allowed_oins and not (self.tls.client_ca or self.proxy.client_cert_header):
            raise ValueError(
                "allowed_oins needs a client certificate to read the OIN from: "
                "[server.tls] client_ca or [server.proxy] client_cert_header"
            )
        return self

    #: Threads that run SOAP requests (each holds at most one database transaction).
    request_threads: int = Field(16, ge=1, le=256)
    #: A request body not complete within this many seconds gets 408: slow clients hold no thread, since
    #: bodies are read before a request thread is taken, but they must not hold a request slot for ever.
    body_timeout: float = Field(30.0, gt=0, le=3600)
    #: Requests in progress per endpoint (reading or being handled); one more gets 503 + Retry-After.
    max_concurrent_requests: int = Field(64, ge=1, le=10_000)


class StoreSettings(_Section):
    #: SQLAlchemy URL. SQLite (WAL) is the embedded default; ``postgresql+psycopg://…`` in production.
    url: str = "sqlite:///loket-adapter.db"
    #: How long a statement waits for a lock before the store counts as unavailable (StUF046).
    lock_timeout_ms: int = Field(5000, ge=1)
    #: Upgrade the schema to the newest migration when ``serve`` starts.
    auto_migrate: bool = True
    pool_size: int = Field(10, ge=1)
    #: Content-addressed store for downloaded documents (werkmap), relative to the config file.
    files_dir: str = "var/files"

    @field_validator("url")
    @classmethod
    def _supported_url(cls, url: str) -> str:
        # Checked here so a bad URL (file or --db) is one line naming store.url, not a traceback later.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
            backend = parsed.get_backend_name()
        except ArgumentError:
            raise ValueError("not a database URL (use sqlite:///FILE or postgresql+psycopg://…)") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r} (use sqlite or postgresql+psycopg)")
        if backend == "sqlite" and sqlite_file(parsed.database) is None:
            raise ValueError(IN_MEMORY)
        return url


class SystemSettings(_Section):
    """A StUF system (org + app + adm), as in ``StUF:zender``/``StUF:ontvanger``."""

    organisatie: str = Field(..., max_length=200)
    applicatie: str = Field(..., min_length=3, max_length=50)
    administratie: str | None = Field(None, max_length=50)

    def matches(self, organisatie: str | None, applicatie: str | None, administratie: str | None) -> bool:
        """A configured administratie must match; an unconfigured one accepts any."""
        if (organisatie or "") != self.organisatie or (applicatie or "") != self.applicatie:
            return False
        return self.administratie is None or self.administratie == (administratie or None)


class StufSettings(_Section):
    #: Systems we answer as. A message addressed to any other ontvanger gets Fo03 StUF010.
    ontvangers: list[SystemSettings] = Field(..., min_length=1)
    #: Systems we accept messages from. Empty accepts every zender; otherwise others get StUF013.
    zenders: list[SystemSettings] = Field(default_factory=list)


class InboundSettings(_Section):
    #: Largest request body accepted; bigger ones get Fo03 StUF055 before they are read.
    max_body_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    #: Deepest element nesting accepted (StUF-LVO needs about 10).
    max_depth: int = Field(64, ge=8, le=250)
    #: Most elements accepted in one message: bytes alone do not bound memory (40 MiB of empty
    #: elements is a 2 GB tree). An aanvraag with hundreds of bijlagen has a few thousand.
    max_elements: int = Field(200_000, ge=1000)
    #: Keep rejected messages (Fo03) in the message log as state ``rejected`` for the operator.
    #: They never enter the inbox, so a corrected resend behaves as a first delivery.
    log_rejected: bool = True
    #: Our StUF-LVO schema (``xsd/lvo/lvo0312.xsd``) is a reconstruction. ``strict``: content not valid
    #: against it gets Fo03 StUF055 (the loket resends). ``lenient``: such content is accepted (Bv03) and the
    #: schema errors are stored as warnings on the message (``messages show``); well-formedness, the hostile-
    #: XML limits, the stuurgegevens checks and a missing aanvraagnummer still get Fo03.
    lvo_schema: Literal["strict", "lenient"] = "strict"

    def xml_limits(self) -> Limits:
        """The limits every parse of a stored or received message uses, at intake and at delivery."""
        return Limits(self.max_body_bytes, self.max_depth, self.max_elements)


class DeliverySettings(_Section):
    """The outbox: worker threads in ``serve``, leases, capped exponential backoff, dead letters."""

    enabled: bool = True
    workers: int = Field(2, ge=0, le=64)
    poll_interval: float = Field(1.0, gt=0)
    #: A running delivery's lease, renewed every third of it by a heartbeat; a worker that stalls past it
    #: is taken over by another and can no longer write (a fencing token): ``adapter.store.lease``.
    lease_seconds: float = Field(300.0, gt=0)
    backoff_initial: float = Field(30.0, ge=0)
    backoff_factor: float = Field(2.0, ge=1)
    backoff_max: float = Field(3600.0, gt=0)
    #: After this many failed attempts a delivery is ``dead`` until an operator resends it.
    max_attempts: int = Field(10, ge=1)
    mappings_dir: str = "mappings"
    #: Once a StUF-LVO aanvraag's zaak exists, tell the loket with vrgDi01KoppelZaakAanAanvraag
    #: (needs a ``[loket]`` table: url, zender, ontvanger).
    koppel_zaak_aan_aanvraag: bool = False


class JobSettings(_Section):
    """The scheduler (APScheduler, job store in the same database)."""

    enabled: bool = True
    #: The werkmap safety net: every N minutes ask ``_zoek`` for verzoeken of the last days.
    werkmap_poll_minutes: float = Field(15.0, gt=0)
    werkmap_poll_lookback_days: float = Field(7.0, gt=0)
    werkmap_poll_page_size: int = Field(50, ge=1, le=500)
    #: A verzoeknotificatie the werkmap refused (403/404, state ``hint-refused``) stays in the message log this
    #: many days with its reason, then ``werkmap-poll`` removes it (message, delivery, attempts).
    refused_hint_days: float = Field(30.0, gt=0)
    #: Advice of the DSO era: every N minutes fetch the samenwerken notifications (``samenwerken-poll``).
    samenwerken_poll_minutes: float = Field(5.0, gt=0)


_REMOTE_DIR = re.compile(r"^/?[^\x00-\x1f]+$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512)|ssh-rsa) [A-Za-z0-9+/=]+$")


class PostboxSettings(_Section):
    """One SFTP postbus (``[postboxes.NAME]``): where the loket puts files of bijlagen sent without inhoud
    (``<aanvraagnummer>_<bestandsnaam>``). Picked up by the ``postbox-pickup`` job (``adapter.postbox``)."""

    host: str = Field(..., min_length=1)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(..., min_length=1)
    #: Private key file (OpenSSH format; relative to the config file). This, ``password`` or both (the key is
    #: tried first).
    key_file: str | None = None
    #: Password (``${ENV}``, never in the file itself), when the postbus has no key login.
    password: str | None = None
    #: The server's host key as in ``known_hosts`` without the host: ``"ssh-ed25519 AAAA…"``. Pinned: any
    #: other key (a changed or unknown server) is refused, naming host and fingerprint; never learnt.
    host_key: str
    #: Remote directories: new files, files whose document was made (moved there), files we send (mirroring:
    #: ``[[mirror]]`` rules in the mappings, and a postbox drop of ``adapter.postbox.mirror``).
    inbox: str = "inbox"
    processed: str = "processed"
    outbox: str = "outbox"
    #: SSH under the SFTP session: "paramiko" (in-process; key, password or both), "openssh" (the ``ssh``
    #: command as a child: key login only, faster for large files), "auto" (openssh for a key login when ``ssh``
    #: is installed, else paramiko).
    transport: Literal["auto", "openssh", "paramiko"] = "auto"
    #: Seconds to wait for the TCP connection, the SSH handshake and each SFTP answer.
    timeout: float = Field(30.0, gt=0, le=600)
    #: Reconnect after a transient failure (refused, timeout, dropped): first wait, doubling up to the max.
    reconnect_initial: float = Field(1.0, ge=0)
    reconnect_max: float = Field(300.0, gt=0)

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        parts = value.split()
        if len(parts) < 2 or not _HOST_KEY.match(" ".join(parts[:2])):
            raise ValueError("not a public host key: write it as 'ssh-ed25519 AAAA…' (ssh-keyscan, without the host)")
        return " ".join(parts[:2])

    @field_validator("inbox", "processed", "outbox")
    @classmethod
    def _remote_dir(cls, value: str) -> str:
        if not _REMOTE_DIR.match(value) or ".." in value.split("/"):
            raise ValueError(f"{value!r} is not a usable remote directory")
        return value

    @model_validator(mode="after")
    def _one_login(self) -> PostboxSettings:
        if not (self.key_file or self.password):
            raise ValueError("give key_file or password (or both) to log in with")
        if self.transport == "openssh" and (self.password or not self.key_file):
            raise ValueError('transport "openssh" logs in with key_file alone: for a password use "paramiko"')
        return self


class PostbusSettings(_Section):
    """How postbus files are picked up and matched to bijlagen without inhoud (every postbox)."""

    #: How often ``postbox-pickup`` lists every inbox (once per interval across all adapter processes).
    pickup_minutes: float = Field(5.0, gt=0)
    #: A picked-up file no message claims (an orphan) is kept this many hours, then removed from the file
    #: store (``postbox files`` shows it as ``expired``; the remote file stays in the inbox).
    orphan_hours: float = Field(168.0, gt=0)
    #: An aanvraag whose bijlage has not come through the postbus after this many hours stops waiting: its
    #: delivery goes to needs-attention naming the missing files (it resumes when they arrive).
    missing_hours: float = Field(24.0, gt=0)
    #: How often ``postbox-mirror`` uploads the documents mapping rules (``[[mirror]]``) selected to each
    #: postbox's ``outbox`` (once per interval across all adapter processes).
    mirror_minutes: float = Field(1.0, gt=0)


#: Channels an adviesverzoek can travel by (``[adviseurs.NAME] channel``).
ADVIES_CHANNELS = ("stuf-lvo", "samenwerken", "postbus")


class AdviseurSettings(_Section):
    """An adviesorganisatie (``[adviseurs.NAME]``): its OIN and the channel our adviesverzoeken take to it
    (``adapter.advies``)."""

    oin: str = Field(..., pattern=r"^[0-9]{20}$")
    #: Shown to the loket as adviseur/naam (optional there).
    naam: str | None = Field(None, min_length=1, max_length=200)
    #: "stuf-lvo": vrgDi01AanvragenAdvies through [loket]. "samenwerken": a DSO actieverzoek through
    #: [samenwerken]. "postbus": the documents and a manifest dropped in ``postbox``'s outbox.
    channel: Literal["stuf-lvo", "samenwerken", "postbus"] = "stuf-lvo"
    #: For channel "postbus": the ``[postboxes.NAME]`` the adviesverzoeken are dropped in.
    postbox: str | None = Field(None, min_length=1, max_length=64)


class AdviesSettings(_Section):
    """Adviesverzoeken we put out (``loket-adapter advies``, ``/advies/…``, ZGW notification rules)."""

    #: einddatum when a trigger names none: today plus this many days.
    termijn_dagen: int = Field(28, ge=1, le=3650)
    #: omschrijving when a trigger names none (``{aanvraagnummer}`` and ``{adviseur}`` are filled in).
    omschrijving: str = Field("Verzoek om advies over aanvraag {aanvraagnummer}", min_length=1, max_length=1000)
    #: The zaaksysteem's key to ``/advies/…`` and ``/zgw/notificaties`` (``Authorization: Bearer …``; the
    #: Notificaties API abonnement's ``auth``). From the environment. Not set: those endpoints answer 403.
    api_token: str | None = Field(None, min_length=16)


#: Days to keep, or ``"forever"``: keeping for ever must be written out, never implied by a missing key or 0.
#: Strict (``true`` is not a day count); a string of digits is a number of days (``LOKET_RETENTION__…=30``).
RetentionDays = Annotated[
    Annotated[int, Field(strict=True, ge=0)] | Literal["forever"],
    BeforeValidator(lambda v: int(v) if isinstance(v, str) and v.isascii() and v.isdigit() else v),
]


class RetentionSettings(_Section):
    """AVG: how long message bodies (and the documents fetched for them) are kept once the message reached
    its state; metadata (ids, times, states, codes, references) stays. A body whose delivery is still
    pending, retrying or running is never purged, whatever its age."""

    #: Delivered (the zaaksysteem holds the verzoek now; a purged message can no longer be resent).
    delivered_days: RetentionDays = 30
    #: Rejected with a fault (kept for the operator to see what came in).
    rejected_days: RetentionDays = 14
    #: Dead and needs-attention wait for an operator's resend, which needs the body.
    dead_days: RetentionDays = 90
    needs_attention_days: RetentionDays = 90
    #: marked handled by an operator (the console's "mark handled", with a reason in the audit log)
    handled_days: RetentionDays = 90
    #: A rejected body is stored cut to this many bytes (``messages show`` says so); 0 stores none of it.
    rejected_body_max_bytes: int = Field(65536, ge=0)
    #: How often the ``purge`` job runs (once per interval across all adapter processes).
    purge_minutes: float = Field(1440.0, gt=0)


class OidcSettings(_Section):
    """Logging in to the console with OpenID Connect (authorization code flow with PKCE): the provider's
    ``issuer`` exactly as its tokens name it (its discovery document at ``issuer/.well-known/openid-configuration``),
    this client, and the claim holding the roles. Someone whose roles name neither role is refused."""

    issuer: str = Field(..., pattern=r"^https?://[^\s?#]+$")
    client_id: str = Field(..., min_length=1)
    #: ``${ENV}``: never in the file itself.
    client_secret: str = Field(..., min_length=1)
    #: This console's callback as the provider knows it: ``https://<host>/console/oidc/callback``.
    redirect_url: str = Field(..., pattern=r"^https?://[^\s?#]+/console/oidc/callback$")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"])
    #: The claim with the account's name (shown, and the actor in the audit log).
    name_claim: str = "preferred_username"
    #: The claim with the roles: a list or a space-separated string; a dotted path reaches a nested one
    #: (Keycloak: ``realm_access.roles``).
    roles_claim: str = "roles"
    beheerder_roles: list[str] = Field(default_factory=list)
    operator_roles: list[str] = Field(default_factory=list)
    #: What the login page's button says.
    label: str = Field("Log in with your organisation's account", min_length=1, max_length=100)
    timeout: float = Field(10.0, gt=0, le=120)

    @field_validator("issuer", "redirect_url")
    @classmethod
    def _https(cls, url: str) -> str:
        host = re.match(r"^https?://([^/:]+)", url)
        if url.startswith("http://") and (host is None or host.group(1) not in ("localhost", "127.0.0.1")):
            raise ValueError("must be https:// (plain http only for localhost)")
        return url  # as written: an issuer is compared exactly (Auth0's end in "/", Keycloak's do not)

    @field_validator("scopes")
    @classmethod
    def _openid(cls, scopes: list[str]) -> list[str]:
        if "openid" not in scopes:
            raise ValueError('must include "openid"')
        return scopes

    @model_validator(mode="after")
    def _some_role(self) -> OidcSettings:
        if not (self.beheerder_roles or self.operator_roles):
            raise ValueError("beheerder_roles or operator_roles: name the roles that may log in")
        return self


class ConsoleSettings(_Section):
    """The operators' console at ``/console`` (README "Console"): named accounts, sessions, limits."""

    enabled: bool = True
    #: Logged out after this long without a request (the portal rule: 20 minutes).
    idle_minutes: float = Field(20.0, gt=0, le=24 * 60)
    #: Logged out this long after logging in, however busy.
    max_session_hours: float = Field(12.0, gt=0, le=7 * 24)
    #: Cookies only over HTTPS (the ``Secure`` flag and the ``__Host-`` name). Off only to try the console over
    #: plain HTTP on another machine than this one: browsers keep secure cookies of http://localhost anyway.
    secure_cookies: bool = True
    #: Messages per page of the message log.
    page_size: int = Field(50, ge=10, le=500)
    #: At most this many messages are resent (or marked handled) by one click; the page says how many remain.
    bulk_limit: int = Field(200, ge=1, le=5000)
    #: Optional: log in with OpenID Connect besides the local accounts (``[console.oidc]``).
    oidc: OidcSettings | None = None


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    stuf: StufSettings
    inbound: InboundSettings = InboundSettings()
    delivery: DeliverySettings = DeliverySettings()
    jobs: JobSettings = JobSettings()
    retention: RetentionSettings = RetentionSettings()
    console: ConsoleSettings = ConsoleSettings()
    #: Pickup of postbus files (every postbox).
    postbus: PostbusSettings = PostbusSettings()
    #: SFTP postboxes by name (``[postboxes.NAME]``).
    postboxes: dict[str, PostboxSettings] = Field(default_factory=dict)
    #: Adviesverzoeken we put out: defaults and the zaaksysteem's key (``adapter.advies``).
    advies: AdviesSettings = AdviesSettings()
    #: Adviesorganisaties by name (``[adviseurs.NAME]``): OIN and channel.
    adviseurs: dict[str, AdviseurSettings] = Field(default_factory=dict)
    #: Targets by name; each table has a ``kind`` ("zgw", "stuf-zkn") and that kind's options,
    #: validated by the target plugin when the adapter starts.
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The loket's StUF-LVO endpoint for messages we send (validated by ``adapter.loket.lvo_client``).
    loket: dict[str, Any] = Field(default_factory=dict)
    #: The DSO werkmap ("Verzoek afhandelen") for STAM (validated by ``adapter.loket.werkmap``).
    werkmap: dict[str, Any] = Field(default_factory=dict)
    #: DSO samenwerken, for adviesverzoeken with channel "samenwerken" (validated by ``adapter.loket.samenwerken``).
    samenwerken: dict[str, Any] = Field(default_factory=dict)
    source: str = Field("<defaults>", exclude=True)
    _env: Report = PrivateAttr(default_factory=Report)

    @model_validator(mode="after")
    def _adviseur_channels(self) -> Settings:
        for name, a in self.adviseurs.items():
            if a.channel == "samenwerken" and not self.samenwerken:
                raise ValueError(f'adviseurs.{name}.channel: "samenwerken" needs a [samenwerken] table (base_url, oin)')
            if a.channel == "postbus" and a.postbox is None:
                raise ValueError(f'adviseurs.{name}.postbox: channel "postbus" needs postbox = "NAME" ([postboxes.…])')
            if a.postbox is not None and a.channel != "postbus":
                raise ValueError(f'adviseurs.{name}.postbox: only for channel "postbus" (channel is "{a.channel}")')
            if a.postbox is not None and a.postbox not in self.postboxes:
                known = ", ".join(sorted(self.postboxes)) or "none configured"
                raise ValueError(
                    f"adviseurs.{name}.postbox: postbox {a.postbox!r} is not configured ([postboxes.{a.postbox}]; "
                    f"known: {known})"
                )
        return self

    def require_env(self) -> None:
        """Before anything is sent: every variable set, no development default for a secret in production."""
        self._env.require(production=self.server.environment == "production")

    def own_oins(self) -> frozenset[str]:
        """The OINs this adapter acts for: every ``[[stuf.ontvangers]]`` organisatie and the ``[werkmap] oin``.
        A STAM verzoek is ours when its bevoegd gezag or its uitvoerende instantie is one of them; a
        verzoeknotificatie naming neither is refused, one whose uitvoerende instantie is another is a kopie."""
        oins = {s.organisatie for s in self.stuf.ontvangers}
        if self.werkmap.get("oin"):
            oins.add(str(self.werkmap["oin"]))
        return frozenset(oins)

    def store_url(self) -> str:
        """``store.url`` with a relative SQLite file taken relative to the config file's folder (like every
        other path in it), so the store does not move with the working directory of whoever starts us."""
        return sqlite_beside(self.store.url, self.source)

    def with_overrides(self, **values: Any) -> Settings:
        """Return a copy with command-line flags applied (``server.port=…`` style dotted keys)."""
        data = self.model_dump()
        for dotted, value in values.items():
            if value is None:
                continue
            section, key = dotted.split(".", 1)
            data[section][key] = value
        settings = _validate(data, self.source)
        object.__setattr__(settings, "_env", self._env)
        return settings


def config_error(exc: ValidationError, source: str, prefix: str = "") -> ConfigError:
    """One line naming file, key and problem (unknown keys first) for any settings model."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    key = prefix + (".".join(str(p) for p in err["loc"]) or "(top level)")
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
        msg = str(err["ctx"]["error"])  # our own validators' text, without pydantic's "Value error, "
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"{source}: {key}: {msg}{more}")


#: ``LOKET_SECTION__KEY[__KEY…]=value`` overrides that key of the file (12-factor); variables without ``__``
#: (``LOKET_ADAPTER_CONFIG``) are not settings.
ENV_PREFIX = "LOKET_"


def _env_value(raw: str) -> Any:
    """A list or table as JSON (``[…]``, ``{…}``); anything else as the string it is, which the setting's type
    converts (``"8081"`` to a port, ``"true"`` to a flag) or refuses."""
    if raw.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg}") from None
    return raw


def apply_env(data: dict[str, Any], environ: Mapping[str, str], source: str) -> dict[str, str]:
    """Set every ``LOKET_…__…`` variable's key in ``data`` (in place); returns dotted key → variable name, so
    an error names the variable, not only the file. A key is matched case-insensitively to one the file has
    (``[targets.Zaaksysteem]``), else taken in lower case."""
    origins: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = name[len(ENV_PREFIX) :].split("__")
        if not all(parts):
            raise ConfigError(f"{name}: not a setting (use {ENV_PREFIX}SECTION__KEY, e.g. {ENV_PREFIX}SERVER__PORT)")
        node, path = data, []
        for i, part in enumerate(parts):
            key = next((k for k in node if k.lower() == part.lower()), part.lower())
            path.append(key)
            if i == len(parts) - 1:
                try:
                    node[key] = _env_value(environ[name])
                except ValueError as exc:
                    raise ConfigError(f"{source}: {'.'.join(path)} (from ${name}): {exc}") from None
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise ConfigError(f"{source}: {'.'.join(path)} (from ${name}): not a table")
                node = child
        origins[".".join(path)] = name
    return origins


def _validate(data: dict[str, Any], source: str, origins: Mapping[str, str] | None = None) -> Settings:
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        text = str(config_error(exc, source))
        for key, name in (origins or {}).items():  # the variable that set it, if one did
            said = text[len(source) + 2 :].split(":", 1)[0]  # the key the error names
            if said == key or said.startswith(f"{key}.") or key.startswith(f"{said}."):
                text = text.replace(f"{source}: {said}", f"{source}: {said} (from ${name})", 1)
                break
        raise ConfigError(text) from None


def load_settings(path: str | os.PathLike[str], *, strict_env: bool = True) -> Settings:
    """Read and validate a TOML file; raise ConfigError with one readable line on any problem. With
    ``strict_env=False`` (read-only commands) unset variables outside the store are left for
    ``Settings.require_env``, which every command that reaches a target, the loket or the werkmap calls."""
    p = Path(path)
    source = str(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    expanded, report = expand(data, source, strict=strict_env)
    origins = apply_env(expanded, os.environ, source)  # after ${…}: an override is taken as it is
    settings = _validate(expanded, source, origins)
    object.__setattr__(settings, "_env", report)
    return settings
