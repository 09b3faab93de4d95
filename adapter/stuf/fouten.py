"""StUF 03.01 fault codes and the exception that carries one to the SOAP layer.

If several faults apply, StUF says to send only the first listed; the inbound channel checks in that
order. ``plek`` decides the SOAP faultcode (client -> ``Client``, server -> ``Server``).
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

Plek = Literal["client", "server"]


class Foutcode(Enum):
    """(code, plek, standard omschrijving)."""

    STUF001 = ("StUF001", "server", "Versie StUF niet ondersteund")
    STUF010 = ("StUF010", "client", "Ontvanger onbekend")
    STUF013 = ("StUF013", "client", "Zender onbekend")
    STUF016 = ("StUF016", "client", "Combinatie zender en referentienummer niet uniek")
    STUF022 = ("StUF022", "client", "Berichtcode onbekend")
    STUF025 = ("StUF025", "server", "Berichtcode niet ondersteund")
    STUF046 = ("StUF046", "server", "Opslaan van het bericht niet mogelijk")
    STUF055 = ("StUF055", "client", "Bericht niet conform het schema")
    STUF058 = ("StUF058", "server", "Verwerking van het bericht mislukt")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def plek(self) -> Plek:
        return self.value[1]

    @property
    def standaard(self) -> str:
        return self.value[2]


OMSCHRIJVING_MAX = 200
DETAILS_MAX = 1000


def clip(text: str, limit: int) -> str:
    """StUF caps omschrijving at 200 and details at 1000 characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StufFout(Exception):
    """A fault to be answered with Fo03; ``omschrijving`` names the problem, ``details`` where."""

    def __init__(self, fout: Foutcode, omschrijving: str, details: str | None = None) -> None:
        self.fout = fout
        self.omschrijving = clip(omschrijving, OMSCHRIJVING_MAX)
        self.details = clip(details, DETAILS_MAX) if details is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.fout.code}: {self.omschrijving}" + (f" ({self.details})" if self.details else "")
