"""The zaaksysteem side of a chain as the ketensimulatie reads it: the fake ZGW (whose state is the whole
truth) or, with ``--target config``, a real one read through its ZGW APIs and the adapter's zaak links."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import or_, select

from adapter.errors import AdapterError
from adapter.simulation import probes
from adapter.simulation.results import StepFailed
from adapter.simulation.scenarios import Step


class FakeSide:
    """The fake ZGW zaaksysteem of a chain: what it holds is the whole truth (a zaak made twice shows)."""

    real = False

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def fail(self, step: Step) -> None:
        assert step.path is not None
        self.fake.fail_next(step.method, step.path, status=step.status, times=step.times)

    def recover(self) -> None:
        self.fake.clear_faults()

    def zaken(self, nummers: set[str]) -> list[dict[str, Any]]:
        """Every zaak whose identificatie ends in one of ``nummers``, or that carries one as kenmerk (an
        adviseur's zaak is named after its adviesverzoek: ``ADV-<nummer>-<crossRefnummer>``)."""
        return [z for z in self.fake.zaken if any(_of_nummer(z, n) for n in nummers)]

    def documenten(self, zaken: list[dict[str, Any]]) -> int:
        urls = {z["url"] for z in zaken}
        return sum(zio["zaak"] in urls for zio in self.fake.zaakinformatieobjecten)

    def rollen(self, zaken: list[dict[str, Any]]) -> int:
        urls = {z["url"] for z in zaken}
        return sum(r["zaak"] in urls for r in self.fake.rollen)

    def view(self, zaak: dict[str, Any]) -> dict[str, Any]:
        return probes.fake_zaak_view(self.fake, zaak)

    def add_zaaktype(self, step: Step) -> None:
        assert step.zaaktype and step.omschrijving and step.begin
        probes.add_zaaktype_version(
            self.fake, step.zaaktype, step.omschrijving, step.begin, step.einde, step.concept, step.close_previous
        )


def _of_nummer(zaak: dict[str, Any], nummer: str) -> bool:
    kenmerken = {k.get("kenmerk") for k in zaak.get("kenmerken") or []}
    return str(zaak.get("identificatie", "")).endswith(nummer) or nummer in kenmerken


class ZgwSide:
    """A zaaksysteem from the config (``--target config``), read through its ZGW APIs: the zaken the adapter
    linked to the scenario's nummers, plus any other zaak of the same identificatie (a duplicate)."""

    real = True

    def __init__(self, services: Any) -> None:
        zgw = [t for t in services.targets.values() if t.kind == "zgw"]
        if len(zgw) != 1:
            from adapter.errors import ConfigError

            raise ConfigError(f"--target config reads one ZGW target; the config has {len(zgw)}")
        self.target = zgw[0]
        self.engine = services.engine

    def fail(self, step: Step) -> None:
        raise StepFailed("a fail step needs the fake zaaksysteem")

    def recover(self) -> None:
        raise StepFailed("a recover step needs the fake zaaksysteem")

    def zaken(self, nummers: set[str]) -> list[dict[str, Any]]:
        with _reading_zaaksysteem():
            return self._zaken(nummers)

    def _zaken(self, nummers: set[str]) -> list[dict[str, Any]]:
        from adapter.store.db import reading
        from adapter.store.tables import zaak_links

        q = select(zaak_links.c.zaak_url).where(
            zaak_links.c.target == self.target.name,
            # an adviseur's zaak is linked under <nummer>#<adviesverzoek>
            or_(zaak_links.c.nummer.in_(sorted(nummers)), *(zaak_links.c.nummer.like(f"{n}#%") for n in nummers)),
        )
        with reading(self.engine) as conn:
            urls = [r.zaak_url for r in conn.execute(q)]
        found: dict[str, dict[str, Any]] = {}
        for url in urls:
            zaak = self.target.client.get(url)
            for same in self.target.client.find_all("zaken", "zaken", identificatie=zaak["identificatie"]):
                found[same["url"]] = same
        return list(found.values())

    def documenten(self, zaken: list[dict[str, Any]]) -> int:
        c = self.target.client
        with _reading_zaaksysteem():
            return sum(len(c.find_all("zaken", "zaakinformatieobjecten", zaak=z["url"])) for z in zaken)

    def rollen(self, zaken: list[dict[str, Any]]) -> int:
        with _reading_zaaksysteem():
            return sum(len(self.target.client.find_all("zaken", "rollen", zaak=z["url"])) for z in zaken)

    def view(self, zaak: dict[str, Any]) -> dict[str, Any]:
        with _reading_zaaksysteem():
            return probes.zgw_zaak_view(self.target.client, zaak)

    def add_zaaktype(self, step: Step) -> None:
        raise StepFailed("a catalogus step needs the fake zaaksysteem")


@contextmanager
def _reading_zaaksysteem() -> Iterator[None]:
    """A zaaksysteem that cannot be read fails the step, saying so (not the whole run)."""
    try:
        yield
    except (AdapterError, httpx.HTTPError) as exc:
        raise StepFailed(f"reading the zaaksysteem failed: {exc}") from None
