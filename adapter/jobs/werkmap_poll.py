"""``werkmap-poll``: the safety net under the verzoeknotificaties.

A missed notification is a missed legal deadline, so every interval the werkmap's ``_zoek`` is asked
for the verzoeken of the last days; every one not yet known is stored as if its notification had
arrived (same duplicate key: verzoeknummer + volgnummer), so notification and poll never deliver
the same verzoek twice. A key held by a refused hint (a notification the werkmap refused) is taken over,
so the poll rescues a verzoek a forged notification named first. The same job removes refused hints older
than ``[jobs] refused_hint_days``: they block nothing, but nobody needs them for ever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from adapter.inbound.stam import StamChannel
from adapter.jobs import PollResult
from adapter.logs import get_logger, new_correlation_id
from adapter.loket import stam
from adapter.services import Services
from adapter.store import messages

log = get_logger("adapter.jobs.werkmap_poll")


def notificatie_xml(hit: dict[str, object], bevoegd_gezag_oin: str) -> bytes:
    """A verzoeknotificatie for a ``_zoek`` hit, in our reconstructed notification shape."""
    ns = stam.VERZOEKNOTIFICATIE
    tijdstip = datetime.now(UTC).replace(microsecond=0).isoformat()
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<vn:verzoeknotificatie xmlns:vn="{ns}">'
        f"<vn:verzoeknummer>{escape(str(hit['verzoeknummer']))}</vn:verzoeknummer>"
        f"<vn:volgnummer>{int(str(hit.get('volgnummer') or 1))}</vn:volgnummer>"
        f"<vn:doel>{escape(str(hit.get('doel') or 'Initiëren'))}</vn:doel>"
        f"<vn:bevoegdGezag><vn:oin>{escape(bevoegd_gezag_oin)}</vn:oin></vn:bevoegdGezag>"
        f"<vn:tijdstipNotificatie>{tijdstip}</vn:tijdstipNotificatie>"
        "</vn:verzoeknotificatie>"
    ).encode()


def poll(services: Services) -> PollResult:
    werkmap = services.werkmap
    if werkmap is None:
        return PollResult(0, 0, 0, "no [werkmap] configured: nothing to poll")
    cfg = services.settings.jobs
    expired = messages.expire_refused_hints(services.engine, datetime.now(UTC) - timedelta(days=cfg.refused_hint_days))
    if expired:
        log.info("refused hints expired", count=len(expired), older_than_days=cfg.refused_hint_days)
    channel = StamChannel(services.settings, services.writer, services.schemas)
    tot = datetime.now(UTC)
    vanaf = tot - timedelta(days=cfg.werkmap_poll_lookback_days)
    found = new = errors = 0
    problems: list[str] = []
    for hit in werkmap.zoek(vanaf, tot, paginagrootte=cfg.werkmap_poll_page_size):
        found += 1
        answer = channel.receive(
            notificatie_xml(hit, werkmap.options.oin), new_correlation_id(), message_type="werkmap-poll"
        )
        if answer.status != 202:
            errors += 1
            problems.append(f"{hit.get('verzoeknummer')}: {answer.body.get('detail')}")
        elif not answer.body.get("duplicate"):
            new += 1
            log.warning("werkmap poll found a verzoek without notification", nummer=hit.get("verzoeknummer"))
    detail = (
        f"{found} verzoeken since {vanaf:%Y-%m-%d %H:%M}, {new} new"
        + (f", {len(expired)} refused hints expired" if expired else "")
        + (f"; {'; '.join(problems[:5])}" if problems else "")
    )
    return PollResult(found, new, errors, detail)
