"""Typed options of a ZGW target (``[targets.<name>]`` with ``kind = "zgw"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.tls import TlsClientOptions


class ApiAuth(BaseModel):
    """JWT credentials (HS256, ZGW practice); per API when APIs sit behind different auth."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    client_id: str = Field(..., min_length=1)
    secret: str = Field(..., min_length=1)  # use "${ENV_VAR}" in the file


class ZgwOptions(TlsClientOptions):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["zgw"]
    zaken_url: str  # e.g. https://zaken.example.nl/zaken/api/v1
    documenten_url: str
    catalogi_url: str
    catalogus: str  # URL of the catalogus holding our zaaktypen
    auth: ApiAuth
    #: Overrides per API ("zaken", "documenten", "catalogi").
    auth_per_api: dict[Literal["zaken", "documenten", "catalogi"], ApiAuth] = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0)
    crs: str = "EPSG:4326"
    auteur: str = "Omgevingsloket"
    #: Bijlagen larger than this go up in ``bestandsdelen`` instead of base64 ``inhoud``.
    large_file_bytes: int = Field(20 * 1024 * 1024, ge=1024)
