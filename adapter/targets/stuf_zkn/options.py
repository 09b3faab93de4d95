"""Typed options of a StUF-ZKN target (``[targets.<name>]`` with ``kind = "stuf-zkn"``).

A zaaksysteem speaks one of the two deployed ZDS forms (``dialect``); the three WSDL ports may sit
behind different URLs, so each has its own optional URL that falls back to ``url``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.envsubst import redact_url
from adapter.tls import TlsClientOptions

Dialect = Literal["zds-1.2", "zds-1.1"]


class StufSysteem(BaseModel):
    """StUF ``zender``/``ontvanger``: who we are and who the zaaksysteem is in the stuurgegevens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisatie: str = Field(..., min_length=1, max_length=200)
    applicatie: str = Field(..., min_length=3, max_length=50)  # StUF Applicatie: 3..50
    administratie: str | None = Field(None, max_length=50)
    gebruiker: str | None = Field(None, max_length=100)


class StufZknOptions(TlsClientOptions):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["stuf-zkn"]
    #: Endpoint for everything unless a port has its own URL below.
    url: str = Field(..., min_length=1)
    #: OntvangAsynchroon (the Lk01 kennisgevingen: creeerZaak, voegZaakdocumentToe, actualiseerZaakstatus).
    url_ontvangasynchroon: str | None = None
    #: VrijeBerichten (genereerZaakIdentificatie_Di02, genereerDocumentIdentificatie_Di02).
    url_vrijeberichten: str | None = None
    #: BeantwoordVraag (geefZaakdetails / geefLijstZaakdocumenten, used to recognise an earlier attempt).
    url_beantwoordvraag: str | None = None
    dialect: Dialect = "zds-1.2"
    zender: StufSysteem
    ontvanger: StufSysteem
    timeout: float = Field(30.0, gt=0)
    username: str | None = None
    password: str | None = None  # use "${ENV_VAR}" in the file
    #: Medewerker identificatie sent as ``isGezetDoor`` of a status; without it the relation is nil.
    medewerker: str | None = Field(None, max_length=24)

    @model_validator(mode="after")
    def _pairs(self) -> StufZknOptions:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        for url in (self.url, self.url_ontvangasynchroon, self.url_vrijeberichten, self.url_beantwoordvraag):
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"not an http(s) URL: {redact_url(url)!r}")
        return self

    def endpoint(self, port: Literal["ontvangasynchroon", "vrijeberichten", "beantwoordvraag"]) -> str:
        return getattr(self, f"url_{port}") or self.url
