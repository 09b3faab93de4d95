"""``samenwerken-poll``: the advice of the DSO era comes back as samenwerken notifications.

Every interval (``[jobs] samenwerken_poll_minutes``, once per interval across processes) the
notifications of the last ``[samenwerken] lookback_days`` are fetched. Each is stored as an inbound message
through ``adapter.store.messages.accept`` — the same path as every other inbound message: committed with
its delivery in one transaction, deduplicated on the notificatieId — and **only after that commit** is it
acknowledged (``DELETE /notificaties/{id}``). A notification whose storing failed is not acknowledged, so the
server offers it again and the next poll stores it; one stored before whose acknowledgement got lost is
found as a duplicate and acknowledged then. Its delivery puts the advice on the zaak
(``adapter.advies.samenwerken``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from adapter.advies import samenwerken as channel
from adapter.errors import AdapterError
from adapter.jobs import PollResult
from adapter.logs import get_logger, new_correlation_id
from adapter.loket import samenwerken as sw
from adapter.store import messages

if TYPE_CHECKING:
    from adapter.services import Services

log = get_logger("adapter.jobs.samenwerken_poll")


def poll(services: Services) -> PollResult:
    client = services.samenwerken
    if client is None:
        return PollResult(0, 0, 0, "no [samenwerken] configured: nothing to poll")
    sinds = datetime.now(UTC) - timedelta(days=client.options.lookback_days)
    found = new = errors = 0
    problems: list[str] = []
    for n in client.notificaties(sinds):
        found += 1
        nid = n["notificatieId"]
        try:
            av = channel.adviesverzoek_of(services.engine, client, n) if n["type"] == sw.ACTIEVERZOEK_GEREED else None
            record = channel.record_for(n, av, new_correlation_id())
            result = messages.accept(
                services.writer, record, "acknowledged", enqueue=n["type"] == sw.ACTIEVERZOEK_GEREED
            )
        except AdapterError as exc:  # not stored: not acknowledged, offered again next time
            errors += 1
            problems.append(f"{nid}: {exc}")
            log.warning("samenwerken notificatie not stored; not acknowledged", notificatie=nid, reason=str(exc))
            continue
        if result.outcome is messages.Outcome.CONFLICT:
            log.warning("samenwerken notificatie differs from the one stored under its id", notificatie=nid)
        if result.outcome is messages.Outcome.STORED:
            new += 1
            log.info("samenwerken notificatie stored", notificatie=nid, message_id=result.message_id,
                     adviesverzoek=record.cross_refnummer)  # fmt: skip
        try:
            client.bevestigen(nid)
        except AdapterError as exc:  # stored: the next poll finds it as a duplicate and acknowledges it then
            errors += 1
            problems.append(f"{nid}: acknowledging: {exc}")
    detail = f"{found} notificaties, {new} new" + (f"; {'; '.join(problems[:5])}" if problems else "")
    return PollResult(found, new, errors, detail)
