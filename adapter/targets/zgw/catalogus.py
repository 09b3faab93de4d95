"""Catalogi lookups for the ZGW target, by rule, never by list order.

Real catalogi hold several versions of a zaaktype side by side (expired, current, concept) and servers
list them in their own order (Open Zaak newest first, others oldest first). So a zaaktype is the one
published version valid on the verzoek's date; roltypen, statustypen and resultaattypen are those of
that version, found by name; a document type must be one the zaaktype allows. Anything that does not
resolve to exactly one object is a permanent error naming the candidates (``TargetRefused`` /
``Ambiguous``): an operator fixes the mapping or the catalogus, then resends.

The delivery and ``mappings check --online`` use these same methods, so a check that passes means the
delivery's lookups pass on that date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar, get_args

from adapter.errors import Ambiguous, TargetRefused
from adapter.mapping.schema import RoltypeGeneriek
from adapter.targets.zgw.client import ZgwClient

CACHE_SECONDS = 600
T = TypeVar("T")

#: omschrijvingGeneriek values of roltypen (ZGW enum)
ROLTYPE_GENERIEK = frozenset(get_args(RoltypeGeneriek))


def geldig_op(obj: dict[str, Any], on: date) -> bool:
    """Published and valid on ``on``: beginGeldigheid ≤ on ≤ eindeGeldigheid (open end allowed)."""
    if obj.get("concept"):
        return False
    begin, einde = obj.get("beginGeldigheid"), obj.get("eindeGeldigheid")
    day = on.isoformat()
    return (not begin or begin <= day) and (not einde or day <= einde)


def _versie(obj: dict[str, Any]) -> str:
    concept = ", concept" if obj.get("concept") else ""
    return f"{obj.get('beginGeldigheid') or '…'}–{obj.get('eindeGeldigheid') or '…'}{concept}"


def _by_name(objects: list[dict[str, Any]], name: str, *, generic: bool) -> list[dict[str, Any]]:
    """Objects whose omschrijving is ``name``; else (``generic``) those whose omschrijvingGeneriek is."""
    found = [o for o in objects if o.get("omschrijving") == name]
    if not found and generic:
        found = [o for o in objects if (o.get("omschrijvingGeneriek") or "").lower() == name.lower()]
    return found


class Catalogus:
    """Cached lookups in one catalogus; URLs by the names mappings use."""

    def __init__(self, client: ZgwClient, catalogus: str) -> None:
        self.client = client
        self.catalogus = catalogus
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def _cached(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = load()
        self._cache[key] = (time.monotonic(), value)
        return value

    def _list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        return self._cached((path, *sorted(params.items())), lambda: self.client.find_all("catalogi", path, **params))

    # -- zaaktype versions ------------------------------------------------------------------------------
    def zaaktype(self, identificatie: str, on: date) -> str:
        """The one published version of zaaktype ``identificatie`` valid on ``on`` (every page read; the
        server's ``datumGeldigheid`` filter is asked for and checked again, in case it ignores it)."""
        found = self._list(
            "zaaktypen", catalogus=self.catalogus, identificatie=identificatie, datumGeldigheid=on.isoformat()
        )
        versions = [z for z in found if z.get("identificatie") == identificatie]
        valid = [z for z in versions if geldig_op(z, on)]
        if len(valid) == 1:
            return str(valid[0]["url"])
        if not valid:
            if not versions:
                versions = [
                    z
                    for z in self._list(
                        "zaaktypen", catalogus=self.catalogus, identificatie=identificatie, status="alles"
                    )
                    if z.get("identificatie") == identificatie
                ]
            if not versions:
                raise TargetRefused(f"zaaktype {identificatie!r} does not exist in catalogus {self.catalogus}")
            seen = "; ".join(f"{_versie(z)} {z.get('url')}" for z in versions)
            raise TargetRefused(
                f"zaaktype {identificatie!r}: no published version valid on {on} in catalogus {self.catalogus} "
                f"(versions: {seen})"
            )
        seen = "; ".join(f"{_versie(z)} {z.get('url')}" for z in valid)
        raise Ambiguous(f"zaaktype {identificatie!r}: {len(valid)} published versions valid on {on}: {seen}")

    def zaaktype_identificatie(self, zaaktype_url: str) -> str:
        return str(self._cached(("zaaktype", zaaktype_url), lambda: self.client.get(zaaktype_url))["identificatie"])

    # -- per zaaktype ----------------------------------------------------------------------------------
    def _one(self, found: list[dict[str, Any]], what: str, zaaktype_url: str, candidates: list[dict[str, Any]]) -> str:
        if len(found) == 1:
            return str(found[0]["url"])
        zt = self.zaaktype_label(zaaktype_url)
        if not found:
            names = ", ".join(sorted(f"{c.get('omschrijving')!r}" for c in candidates)) or "none"
            raise TargetRefused(f"{what} does not exist for zaaktype {zt} (it has: {names})")
        names = ", ".join(sorted(f"{c.get('omschrijving')!r}" for c in found))
        raise Ambiguous(f"{what} matches {len(found)} of zaaktype {zt}: {names}; name one by its omschrijving")

    def zaaktype_label(self, zaaktype_url: str) -> str:
        try:
            return self.zaaktype_identificatie(zaaktype_url)
        except Exception:  # a label for an error message must not hide that error
            return zaaktype_url

    def roltype(self, zaaktype_url: str, naam: str) -> str:
        """By omschrijving ("Gemachtigde"), or by omschrijvingGeneriek ("belanghebbende") when no
        roltype has that omschrijving; a generic name that fits two roltypen is ``Ambiguous``."""
        roltypen = self._list("roltypen", zaaktype=zaaktype_url)
        found = _by_name(roltypen, naam, generic=naam.lower() in ROLTYPE_GENERIEK)
        return self._one(found, f"roltype {naam!r}", zaaktype_url, roltypen)

    def statustype(self, zaaktype_url: str, volgnummer_of_naam: int | str) -> str:
        statustypen = self._list("statustypen", zaaktype=zaaktype_url)
        if isinstance(volgnummer_of_naam, int):
            found = [s for s in statustypen if s.get("volgnummer") == volgnummer_of_naam]
        else:
            found = _by_name(statustypen, volgnummer_of_naam, generic=True)
        return self._one(found, f"statustype {volgnummer_of_naam!r}", zaaktype_url, statustypen)

    def is_eindstatus(self, statustype_url: str) -> bool:
        """The statustype with the highest volgnummer of its zaaktype (``isEindstatus``)."""
        st = self._cached(("statustype", statustype_url), lambda: self.client.get(statustype_url))
        return bool(st.get("isEindstatus"))

    def resultaattype(self, zaaktype_url: str, naam: str) -> str:
        resultaattypen = self._list("resultaattypen", zaaktype=zaaktype_url)
        found = _by_name(resultaattypen, naam, generic=True)
        return self._one(found, f"resultaattype {naam!r}", zaaktype_url, resultaattypen)

    # -- document types ---------------------------------------------------------------------------------
    def _allowed(self, zaaktype_url: str) -> set[str]:
        """What the zaaktype allows, as omschrijvingen (Catalogi 1.3) or URLs (older servers)."""
        links = self._list("zaaktype-informatieobjecttypen", zaaktype=zaaktype_url)
        return {str(link.get("informatieobjecttype")) for link in links}

    def informatieobjecttypen(self) -> list[dict[str, Any]]:
        return self._list("informatieobjecttypen", catalogus=self.catalogus)

    def informatieobjecttype(self, zaaktype_url: str, omschrijving: str, on: date) -> str:
        """The informatieobjecttype ``omschrijving`` valid on ``on``, and only if the zaaktype allows it:
        the Zaken API refuses a document of another type on the zaak."""
        valid = [i for i in self.informatieobjecttypen() if i.get("omschrijving") == omschrijving and geldig_op(i, on)]
        if not valid:
            raise TargetRefused(
                f"informatieobjecttype {omschrijving!r} does not exist (valid on {on}) in catalogus {self.catalogus}"
            )
        if len(valid) > 1:
            seen = "; ".join(f"{_versie(i)} {i.get('url')}" for i in valid)
            raise Ambiguous(f"informatieobjecttype {omschrijving!r}: {len(valid)} versions valid on {on}: {seen}")
        allowed = self._allowed(zaaktype_url)
        if omschrijving not in allowed and valid[0]["url"] not in allowed:
            urls = {str(i["url"]): str(i.get("omschrijving")) for i in self.informatieobjecttypen()}
            names = ", ".join(sorted({urls.get(a, a) for a in allowed})) or "none"
            raise TargetRefused(
                f"informatieobjecttype {omschrijving!r} is not allowed for zaaktype "
                f"{self.zaaktype_label(zaaktype_url)} (allowed: {names})"
            )
        return str(valid[0]["url"])
