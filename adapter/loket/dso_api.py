"""What the clients of the DSO APIs (werkmap/verzoeken, samenwerken) share: where the API is and as whom we
call it (our OIN as ``X-Oin``, with the client certificate of ``TlsClientOptions``)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from adapter.envsubst import redact_url
from adapter.tls import TlsClientOptions


class DsoApiOptions(TlsClientOptions):
    """A DSO API's base URL (http or https), our OIN and the timeout of its calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(..., min_length=1)
    #: Our OIN (20 digits), sent as ``X-Oin``.
    oin: str = Field(..., pattern=r"^\d{20}$")
    #: Seconds for connect, each read and each write (not for a whole download).
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _check_base_url(self) -> DsoApiOptions:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {redact_url(self.base_url)!r}")
        return self


def one_line(text: str) -> str:
    """TEXT with every run of whitespace (newlines too) as one space: fit for one log or error line."""
    return " ".join(str(text).split())
