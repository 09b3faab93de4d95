"""Client TLS settings shared by every outbound client (werkmap, loket, ZGW, StUF-ZKN): a PKIoverheid
client certificate and an optional CA bundle, checked the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class TlsClientOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_cert: str | None = None
    client_key: str | None = None
    ca_bundle: str | None = None

    @model_validator(mode="after")
    def _check_tls(self) -> TlsClientOptions:
        if self.client_key and not self.client_cert:
            raise ValueError("client_key without client_cert")
        return self

    def missing_files(self) -> list[str]:
        """Configured certificate files that are not there (for start-up checks)."""
        files = (("client_cert", self.client_cert), ("client_key", self.client_key), ("ca_bundle", self.ca_bundle))
        return [f"{name} {path} does not exist" for name, path in files if path and not Path(path).is_file()]

    def httpx_tls(self) -> dict[str, Any]:
        """``cert`` and ``verify`` arguments for an httpx client."""
        cert = (self.client_cert, self.client_key) if self.client_key else self.client_cert
        return {"cert": cert, "verify": self.ca_bundle or True}
