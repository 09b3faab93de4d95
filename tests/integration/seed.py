"""The test catalogus in the real Open Zaak, made through its Django ORM (``manage.py shell``): publishing
through the Catalogi API needs the online VNG selectielijst, which a test machine cannot reach.

It mirrors ``adapter/simulation/fake_zgw/catalogi.py`` DEFAULT_SEED, so ``mappings/voorbeeldstad.toml``
works against both: ZT-OMV-REG in three versions (expired 2020–2023, current from 2024, a concept from
2099), ZT-MELDING, ZT-VOOROVERLEG and ZT-TRIAGE (which allows only Aanvraag and Bijlage); roltypen
Aanvrager (initiator), Gemachtigde and Belanghebbende (both "belanghebbende"); statustypen Ontvangen,
In behandeling, Ingetrokken, Afgehandeld (the eindstatus); resultaattypen Ingetrokken and Verleend.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from adapter.simulation.fake_zgw.catalogi import DEFAULT_SEED

if TYPE_CHECKING:
    from tests.integration.openzaak_server import OpenZaak

CATALOGUS_DOMEIN = DEFAULT_SEED["catalogus"]["domein"]

# Runs inside Open Zaak's `manage.py shell`; SEED and BASE are prepended. Prints one JSON line.
SCRIPT = r"""
import datetime as dt
from dateutil.relativedelta import relativedelta
from django.db import transaction
from openzaak.components.catalogi.models import (
    Catalogus, InformatieObjectType, ResultaatType, RolType, StatusType, ZaakType,
    ZaakTypeInformatieObjectType,
)

def d(s):
    return dt.date.fromisoformat(s) if s else None

with transaction.atomic():
    cat_in = SEED["catalogus"]
    cat = Catalogus.objects.filter(domein=cat_in["domein"]).first()
    if cat is None:
        cat = Catalogus.objects.create(
            naam=cat_in["naam"], domein=cat_in["domein"], rsin=cat_in["rsin"],
            contactpersoon_beheer_naam=cat_in["contactpersoonBeheerNaam"],
            begindatum_versie=dt.date(2024, 1, 1), versie="1",
        )
        iots = {}
        for name in SEED["informatieobjecttypen"]:
            iots[name] = InformatieObjectType.objects.create(
                catalogus=cat, omschrijving=name, informatieobjectcategorie="Overig",
                vertrouwelijkheidaanduiding="openbaar", datum_begin_geldigheid=dt.date(2024, 1, 1), concept=False,
            )
        for item in SEED["zaaktypen"]:
            zt = ZaakType.objects.create(
                catalogus=cat,
                identificatie=item["identificatie"],
                zaaktype_omschrijving=item["omschrijving"],
                vertrouwelijkheidaanduiding="openbaar",
                doel="Behandelen van een verzoek uit het Omgevingsloket",
                aanleiding="Indiening in het Omgevingsloket",
                indicatie_intern_of_extern="extern",
                handeling_initiator="Indienen",
                onderwerp="Omgevingsrecht",
                handeling_behandelaar="Behandelen",
                doorlooptijd_behandeling=relativedelta(days=56),
                opschorting_en_aanhouding_mogelijk=True,
                verlenging_mogelijk=False,
                publicatie_indicatie=False,
                referentieproces_naam="Omgevingsvergunning",
                verantwoordelijke="Team vergunningen",
                datum_begin_geldigheid=d(item.get("beginGeldigheid", "2024-01-01")),
                datum_einde_geldigheid=d(item.get("eindeGeldigheid")),
                versiedatum=d(item.get("versiedatum", item.get("beginGeldigheid", "2024-01-01"))),
                concept=bool(item.get("concept", False)),
            )
            for n, name in enumerate(item.get("informatieobjecttypen", SEED["informatieobjecttypen"]), start=1):
                ZaakTypeInformatieObjectType.objects.create(
                    zaaktype=zt, informatieobjecttype=iots[name], volgnummer=n, richting="inkomend"
                )
            for rt in SEED["roltypen"]:
                RolType.objects.create(
                    zaaktype=zt, omschrijving=rt["omschrijving"], omschrijving_generiek=rt["omschrijvingGeneriek"]
                )
            for n, name in enumerate(SEED["statustypen"], start=1):
                StatusType.objects.create(zaaktype=zt, statustype_omschrijving=name, statustypevolgnummer=n)
            for rt in SEED["resultaattypen"]:
                ResultaatType.objects.create(
                    zaaktype=zt, omschrijving=rt["omschrijving"], omschrijving_generiek=rt["omschrijvingGeneriek"],
                    resultaattypeomschrijving="",  # a URL here is fetched online on save
                    selectielijstklasse="https://selectielijst.openzaak.nl/api/v1/resultaten/8af64c99-a168-40dd-8afd-9fbe0597b6dc",
                    archiefnominatie="vernietigen", archiefactietermijn=relativedelta(years=10),
                    brondatum_archiefprocedure_afleidingswijze="afgehandeld",
                )

def url(component, resource, obj):
    return f"{BASE}/{component}/api/v1/{resource}/{obj.uuid}"

out = {
    "catalogus": url("catalogi", "catalogussen", cat),
    "zaaktypen": [
        {"url": url("catalogi", "zaaktypen", z), "identificatie": z.identificatie,
         "beginGeldigheid": str(z.datum_begin_geldigheid), "eindeGeldigheid": str(z.datum_einde_geldigheid or ""),
         "concept": z.concept}
        for z in ZaakType.objects.filter(catalogus=cat).order_by("pk")
    ],
}
print("SEED " + json.dumps(out))
"""


def seed(oz: OpenZaak) -> dict[str, Any]:
    """Seed (once; a second call finds the catalogus) and return the catalogus and zaaktype URLs."""
    prelude = f"import json\nSEED = json.loads({json.dumps(json.dumps(DEFAULT_SEED))})\nBASE = {oz.url!r}\n"
    out = oz.shell(prelude + SCRIPT)
    line = next(line for line in out.splitlines() if line.startswith("SEED "))
    result: dict[str, Any] = json.loads(line[5:])
    return result
