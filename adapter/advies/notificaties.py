"""ZGW notifications that put out an adviesverzoek: the mapping files' ``[[adviesverzoeken]]`` rules.

The zaaksysteem's Notificaties API (1.0: ``kanaal``, ``hoofdObject``, ``resource``, ``resourceUrl``,
``actie``, ``aanmaakdatum``, ``kenmerken``) posts to ``/zgw/notificaties`` (an abonnement whose ``auth`` is
``Bearer <[advies] api_token>``). Every rule whose kanaal, resource, actie and kenmerken match — and, with
``statustype``, whose status (read from the ZGW target that holds ``resourceUrl``) has that statustype —
puts out one adviesverzoek for the zaak ``hoofdObject``. Each (notification, rule) does so once: a
repeated notification (the Notificaties API retries) finds the adviesverzoek it made (``trigger_key``).
The adviesverzoek is committed before the answer; a ZGW lookup that fails is answered 503, so the
Notificaties API tries again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from adapter.advies import service, store
from adapter.config import Settings
from adapter.errors import ConfigError, InputError
from adapter.logs import get_logger
from adapter.loket.lvo import INCOMING, LVO
from adapter.mapping.loader import LoadedMapping
from adapter.mapping.schema import AdviesRegel
from adapter.store.db import reading
from adapter.store.tables import messages
from adapter.targets.base import Target
from adapter.xmlsafe import Limits, parse

log = get_logger("adapter.advies.notificaties")

_REQUIRED = ("kanaal", "hoofdObject", "resource", "resourceUrl", "actie", "aanmaakdatum")


@dataclass(frozen=True)
class Notificatie:
    kanaal: str
    hoofd_object: str
    resource: str
    resource_url: str
    actie: str
    aanmaakdatum: datetime
    kenmerken: dict[str, str]


def read(data: Any) -> Notificatie:
    """A Notificaties API 1.0 notification; ``InputError`` names what is wrong."""
    if not isinstance(data, dict):
        raise InputError("not a JSON object")
    missing = [k for k in _REQUIRED if not isinstance(data.get(k), str) or not data[k].strip()]
    if missing:
        raise InputError(f"missing or not a text: {', '.join(missing)}")
    for k in ("hoofdObject", "resourceUrl"):
        if not data[k].startswith(("http://", "https://")):
            raise InputError(f"{k}: not a URL")
    try:
        aanmaakdatum = datetime.fromisoformat(data["aanmaakdatum"].replace("Z", "+00:00"))
    except ValueError:
        raise InputError("aanmaakdatum: not an ISO 8601 date-time") from None
    kenmerken = data.get("kenmerken") or {}
    if not isinstance(kenmerken, dict) or not all(isinstance(v, str) for v in kenmerken.values()):
        raise InputError("kenmerken: not an object of texts")
    return Notificatie(
        data["kanaal"],
        data["hoofdObject"],
        data["resource"],
        data["resourceUrl"],
        data["actie"],
        aanmaakdatum,
        {str(k): v for k, v in kenmerken.items()},
    )


def _zgw_get(targets: dict[str, Target], url: str) -> Any:
    """GET a Zaken/Catalogi resource through the ZGW target whose API holds it (its auth, its TLS)."""
    for t in targets.values():
        options = getattr(t, "options", None)
        bases = [getattr(options, k, "") for k in ("zaken_url", "catalogi_url", "documenten_url")]
        if t.kind == "zgw" and any(b and url.startswith(b.rstrip("/")) for b in bases):
            return t.client.get(url)  # type: ignore[attr-defined]
    raise ConfigError(f"no [targets.NAME] of kind zgw serves {url}")


def _matches(rule: AdviesRegel, n: Notificatie, targets: dict[str, Target]) -> bool:
    if (rule.kanaal, rule.resource, rule.actie) != (n.kanaal, n.resource, n.actie):
        return False
    if any(n.kenmerken.get(k) != v for k, v in rule.kenmerken.items()):
        return False
    if rule.statustype is None:
        return True
    statustype = str(_zgw_get(targets, n.resource_url).get("statustype") or "")
    if rule.statustype.startswith(("http://", "https://")):
        return statustype == rule.statustype
    return bool(statustype) and _zgw_get(targets, statustype).get("omschrijving") == rule.statustype


def bijlagen_of(engine: Engine, aanvraagnummer: str, limits: Limits) -> tuple[str, ...]:
    """Every bijlageId of the StUF-LVO aanvraag and its aanvullingen as received (the loket knows them)."""
    types = [name for name, b in INCOMING.items() if b.soort in ("aanvraag", "conceptverzoek", "aanvulling")]
    q = (
        select(messages.c.body)
        .where(
            messages.c.nummer == aanvraagnummer,
            messages.c.channel == "stuf-lvo",
            messages.c.message_type.in_(types),
            messages.c.dedup_key.is_not(None),
        )
        .order_by(messages.c.id)
    )
    with reading(engine) as conn:
        bodies = [bytes(r.body) for r in conn.execute(q)]
    ids: list[str] = []
    for body in bodies:
        if not body:
            continue  # purged (retention)
        for el in parse(body, limits).iter(f"{{{LVO}}}bijlageId"):
            if el.text and el.text.strip() not in ids:
                ids.append(el.text.strip())
    return tuple(ids)


def handle(
    settings: Settings, engine: Engine, mappings: list[LoadedMapping], targets: dict[str, Target], n: Notificatie
) -> list[store.Adviesverzoek]:
    """Put out the adviesverzoeken this notification asks for (none when no rule matches)."""
    made = []
    for m in mappings:
        for i, rule in enumerate(m.mapping.adviesverzoeken):
            if not _matches(rule, n, targets):
                continue
            where = f"{m.path.name} adviesverzoeken[{i}]"
            nummer = store.aanvraag_of_zaak(engine, n.hoofd_object)
            if nummer is None:
                log.warning("notification matched, but no aanvraag is known for its zaak", rule=where)
                continue
            documents = bijlagen_of(engine, nummer, settings.inbound.xml_limits()) if rule.bijlagen == "alle" else ()
            termijn = rule.termijn_dagen or settings.advies.termijn_dagen
            einddatum = max(n.aanmaakdatum.date(), date.today()) + timedelta(days=termijn)
            key = hashlib.sha256(f"{n.resource_url}|{n.actie}|{m.path.name}|{i}".encode()).hexdigest()
            request = service.Aanvraag(n.hoofd_object, rule.adviseur, documents, einddatum, rule.omschrijving, nummer)
            av, new = service.aanvragen(settings, engine, request, bron="notificatie", trigger_key=f"zgw:{key}")
            log.info("adviesverzoek from a notification", rule=where, adviesverzoek=av.id, new=new)
            made.append(av)
    return made
