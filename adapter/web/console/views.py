"""The console's message log: the list with its filters and counts, one message in full, and the actions on them.

Every page needs a session (else: the login page); every action is a POST with the session's CSRF token, by a
beheerder, written to the audit log with its true outcome. Store work runs in the thread pool, so a slow query
never stalls the event loop that also serves the loket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapter.errors import AdapterError
from adapter.logs import get_logger, personal_values, redact
from adapter.model import Verzoek
from adapter.privacy import mask_values, masked_download, model_view, show_xml
from adapter.services import Services
from adapter.store import handling, message_log, sessions
from adapter.store.message_log import LogFilter
from adapter.store.messages import get_message
from adapter.store.outbox import delivery_of_message
from adapter.store.retention import purged_text
from adapter.store.sessions import Session
from adapter.store.states import MESSAGE_STATES
from adapter.store.users import audit
from adapter.text import parse_moment
from adapter.web.console.auth import FormTooLarge, Gate, first, form, token_matches
from adapter.web.console.guidance import next_step
from adapter.web.console.render import page

log = get_logger("adapter.web.console")

#: States an operator must look at: shown first and highlighted in the counts.
ATTENTION = ("dead", "needs-attention", "hint-refused")
CHANNELS = ("stuf-lvo", "stam")
#: The list's query parameters, in the order the filter form shows them.
FILTER_KEYS = ("state", "channel", "type", "nummer", "zender", "referentie", "since", "until")

Handler = Callable[[Any, Request, Session], Awaitable[Response]]


@dataclass(frozen=True)
class Query:
    """The list's filter as the page holds it (texts, for the form and links) and as the store reads it."""

    values: dict[str, str]
    flt: LogFilter
    error: str | None = None

    def link(self, **extra: str | int) -> str:
        params = {k: v for k, v in self.values.items() if v} | {k: str(v) for k, v in extra.items()}
        return "/console/messages" + (f"?{urlencode(params)}" if params else "")


def read_query(values: dict[str, str]) -> Query:
    """The filter from the list's query parameters; a wrong one is named and ignored, never an error page."""
    v = {k: values.get(k, "").strip() for k in FILTER_KEYS}
    try:
        flt = LogFilter(
            state=v["state"] or None,
            message_type=v["type"] or None,
            since=parse_moment(v["since"]) if v["since"] else None,
            until=parse_moment(v["until"]) if v["until"] else None,
            nummer=v["nummer"] or None,
            channel=v["channel"] or None,
            zender=v["zender"] or None,
            referentie=v["referentie"] or None,
        )
    except ValueError as exc:
        return Query(dict.fromkeys(FILTER_KEYS, ""), LogFilter(), f"filter not applied: {exc}")
    return Query(v, flt)


def signed_in(handler: Handler) -> Callable[[Any, Request], Awaitable[Response]]:
    """A page for any logged-in user; without a live session: the login page (saying why, when it timed out)."""

    @wraps(handler)
    async def wrapped(self: Any, request: Request) -> Response:
        session = await self.gate.session(request)
        if session is None:
            expired = self.gate.cookies.session in request.cookies
            target = "/console/login" + ("?expired=1" if expired else "")
            response = RedirectResponse(target, status_code=303)
            if expired:
                self.gate.cookies.clear(response, self.gate.cookies.session)
            return response
        return await handler(self, request, session)

    return wrapped


ActionHandler = Callable[[Any, Request, Session, dict[str, list[str]]], Awaitable[Response]]


def action(*, beheerder: bool = True) -> Callable[[ActionHandler], Callable[[Any, Request], Awaitable[Response]]]:
    """A POST: a live session, the session's CSRF token in the form, and (unless said otherwise) a beheerder."""

    def decorate(handler: ActionHandler) -> Callable[[Any, Request], Awaitable[Response]]:
        @wraps(handler)
        async def wrapped(self: Any, request: Request) -> Response:
            session = await self.gate.session(request)
            if session is None:
                return self.refused(None, 401, "Not logged in (or logged out after inactivity): log in again.")
            try:
                fields_ = await form(request)
            except FormTooLarge as exc:
                return self.refused(session, 413, str(exc))
            if not token_matches(first(fields_, "csrf"), session.csrf):
                log.warning("console action refused: csrf", user=session.user, path=request.url.path)
                return self.refused(
                    session, 403, "Refused: the form's CSRF token is missing or wrong. Reload the page."
                )
            if beheerder and not session.may_act:
                return self.refused(session, 403, "Refused: your role (operator) can look, not act.")
            return await handler(self, request, session, fields_)

        return wrapped

    return decorate


def _ids(fields_: dict[str, list[str]]) -> list[int]:
    return sorted({int(v) for v in fields_.get("id", []) if v.isdigit()})


class MessageViews:
    def __init__(self, services: Services, gate: Gate) -> None:
        self.services = services
        self.engine = services.engine
        self.gate = gate
        self.settings = services.settings.console
        self.limits = services.settings.inbound.xml_limits()
        self.counts = message_log.StateCounts()

    def refused(self, session: Session | None, status: int, text: str) -> Response:
        return page("refused.html", status=status, session=session, text=text, nav="messages")

    # -- the list ------------------------------------------------------------------------------------

    @signed_in
    async def list_page(self, request: Request, session: Session) -> Response:
        query = read_query(dict(request.query_params))
        before_text = request.query_params.get("before", "")
        before = int(before_text) if before_text.isdigit() else None
        rows, (counts, counted_at), orphans = await run_in_threadpool(self._list, query.flt, before)
        older = query.link(before=rows[-1].id) if len(rows) == self.settings.page_size else None
        return page(
            "list.html",
            session=session,
            nav="messages",
            rows=rows,
            counts=counts,
            counted_at=counted_at,
            orphans=orphans,
            attention=ATTENTION,
            states=MESSAGE_STATES,
            channels=CHANNELS,
            query=query,
            older=older,
            newest=query.link() if before is not None else None,
            bulk_limit=self.settings.bulk_limit,
        )

    def _list(
        self, flt: LogFilter, before: int | None
    ) -> tuple[list[message_log.LogRow], tuple[dict[str, int], datetime], int]:
        """The page, the counts per state, and how many postbus files no message claims (orphans)."""
        from adapter.store.postbox import orphans

        rows = message_log.page(self.engine, flt, limit=self.settings.page_size, before=before)
        return rows, self.counts.get(self.engine), len(orphans(self.engine))

    # -- one message ---------------------------------------------------------------------------------

    @signed_in
    async def detail_page(self, request: Request, session: Session) -> Response:
        mid = int(request.path_params["id"])
        found = await run_in_threadpool(self._detail, mid, session)
        if found is None:
            return page("refused.html", status=404, session=session, text=f"No message {mid}.", nav="messages")
        return page("detail.html", session=session, nav="messages", **found)

    def _detail(self, mid: int, session: Session) -> dict[str, Any] | None:
        row = get_message(self.engine, mid)
        if row is None:
            return None
        masked = mid not in session.unmasked
        delivery = message_log.delivery_view(delivery_of_message(self.engine, mid))
        body_note = None
        if row.body_purged_at is not None:
            body, is_xml, body_note = "", False, purged_text(row.body_purged_at)
        else:
            body, is_xml = show_xml(row.body, masked=masked, limits=self.limits)
            if row.body_truncated:
                body_note = (
                    f"stored cut to {len(row.body):,} of {row.size:,} bytes ([retention] rejected_body_max_bytes)"
                )
        answer = show_xml(row.answer.encode("utf-8"), masked=masked, limits=self.limits)[0] if row.answer else None
        verzoek, model_note = self._verzoek(row.channel, row.body) if not row.body_purged_at else (None, None)
        personal = personal_values(verzoek) if verzoek is not None and masked else set()
        model = model_view(verzoek, masked=masked) if verzoek is not None else None
        calls = [mask_values(line, personal) if masked else line for line in self._preview(row.body, verzoek)]
        if delivery is not None and masked:
            delivery = {**delivery, "last_error": _masked(delivery["last_error"])}
            delivery["attempt_log"] = [{**a, "error": _masked(a["error"])} for a in delivery["attempt_log"]]
        return {
            "m": replace(row, body=b"", error_text=_masked(row.error_text) if masked else row.error_text),
            "masked": masked,
            "body": body,
            "is_xml": is_xml,
            "body_note": body_note,
            "answer": answer,
            "model": model,
            "model_note": model_note,
            "calls": calls,
            "delivery": delivery,
            "next": next_step(row.state, delivery, error_code=row.error_code),
            "stuurgegevens": [
                (f.name, getattr(row, f.name))
                for f in fields(row)
                if f.name
                in ("berichtcode", "zender", "ontvanger", "referentienummer", "cross_refnummer", "tijdstip_bericht")
            ],
        }

    def _verzoek(self, channel: str, body: bytes) -> tuple[Verzoek | None, str | None]:
        """The canonical verzoek of a StUF-LVO message; a STAM notificatie only names its verzoek."""
        if channel != "stuf-lvo":
            return None, "A verzoeknotificatie only names its verzoek: the delivery reads it from the werkmap."
        from adapter.loket.lvo_parse import parse_verzoek
        from adapter.validation import message_of
        from adapter.xmlsafe import parse

        try:
            message = message_of(parse(body, self.limits))
            verzoek = parse_verzoek(message, self.services.settings.stuf.ontvangers[0].organisatie)
        except (AdapterError, KeyError, ValueError) as exc:
            return None, f"Not readable as a verzoek: {redact(str(exc))}"
        return verzoek, None

    def _preview(self, body: bytes, verzoek: Verzoek | None) -> list[str]:
        """The calls this message's verzoek maps to with the mapping files as they are now (``mappings
        preview``): after a fix, what a resend will send. Only for a readable StUF-LVO verzoek."""
        outbox = self.services.outbox
        if verzoek is None or outbox is None:
            return []
        from adapter.delivery.preview import preview_message
        from adapter.mapping.engine import build_opdracht

        settings = self.services.settings
        try:
            mappings = outbox.mappings.get()
            own = settings.own_oins()
            return list(preview_message(body, settings, mappings, self.services.targets, build_opdracht, own))
        except AdapterError as exc:
            return [f"does not map: {redact(str(exc))}"]

    @signed_in
    async def download(self, request: Request, session: Session) -> Response:
        """The body: exactly as received for an unmasked message, else pretty-printed and masked."""
        mid = int(request.path_params["id"])
        row = await run_in_threadpool(get_message, self.engine, mid)
        if row is None or row.body_purged_at is not None:
            return self.refused(session, 404, f"No body of message {mid} (unknown, or purged by retention).")
        if mid in session.unmasked:
            data, name = row.body, f"message-{mid}.xml"
        else:
            data, name = await run_in_threadpool(masked_download, row.body, self.limits), f"message-{mid}-masked.xml"
        return Response(
            data,
            media_type="application/xml",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    # -- actions -------------------------------------------------------------------------------------

    @action()
    async def resend(self, request: Request, session: Session, fields_: dict[str, list[str]]) -> Response:
        ids = [int(request.path_params["id"])]
        return await self._resend(session, ids, remaining=0)

    @action()
    async def bulk(self, request: Request, session: Session, fields_: dict[str, list[str]]) -> Response:
        """Resend the selected, or every message matching the filter (up to ``bulk_limit``); mark selected handled."""
        what = first(fields_, "do")
        limit = self.settings.bulk_limit
        if what == "resend-matching":
            query = read_query({k: first(fields_, k) for k in FILTER_KEYS})
            if query.error:
                return self.refused(session, 400, query.error)
            ids = await run_in_threadpool(message_log.matching_ids, self.engine, query.flt, limit=limit + 1)
            return await self._resend(session, ids[:limit], remaining=max(0, len(ids) - limit))
        ids = _ids(fields_)
        if not ids:
            return self.refused(session, 400, "Nothing selected: tick the messages first.")
        if len(ids) > limit:
            return self.refused(session, 400, f"{len(ids)} selected; at most {limit} per click ([console] bulk_limit).")
        if what == "resend-selected":
            return await self._resend(session, ids, remaining=0)
        if what == "handled-selected":
            return await self._handled(session, ids, first(fields_, "reason"))
        return self.refused(session, 400, f"Unknown action {what!r}.")

    @action()
    async def handled(self, request: Request, session: Session, fields_: dict[str, list[str]]) -> Response:
        return await self._handled(session, [int(request.path_params["id"])], first(fields_, "reason"))

    @action()
    async def unmask(self, request: Request, session: Session, fields_: dict[str, list[str]]) -> Response:
        mid = int(request.path_params["id"])
        reason = " ".join(first(fields_, "reason").split())
        if len(reason) < 5:
            return self.refused(session, 400, "Unmasking needs a reason (why you must see this person's data).")
        await run_in_threadpool(sessions.unmask, self.engine, session, mid, reason)
        log.info("console unmask", user=session.user, message_id=mid)
        return RedirectResponse(f"/console/messages/{mid}", status_code=303)

    async def _resend(self, session: Session, ids: list[int], *, remaining: int) -> Response:
        outbox = self.services.outbox
        if outbox is None:
            return self.refused(session, 409, "Delivery is not enabled in this process ([delivery] enabled = false).")
        if not ids:
            return page("result.html", session=session, nav="messages", title="Resend", lines=[], ok=0, remaining=0)
        lines: list[tuple[int | None, str, bool]] = []
        for mid in ids:  # one at a time: each outcome is known (and audited) before the next starts
            result = (await run_in_threadpool(outbox.resend, [mid]))[0]
            text = result if isinstance(result, str) else result.line()
            ok = not isinstance(result, str) and result.state == "done"
            await run_in_threadpool(self._audit, session.user, "resent", mid, text)
            lines.append((mid, text, ok))
        log.info("console resend", user=session.user, count=len(ids), delivered=sum(ok for *_, ok in lines))
        return page(
            "result.html",
            session=session,
            nav="messages",
            title="Resend",
            lines=lines,
            ok=sum(ok for *_, ok in lines),
            remaining=remaining,
        )

    async def _handled(self, session: Session, ids: list[int], reason: str) -> Response:
        try:
            out = await run_in_threadpool(handling.mark_handled, self.engine, ids, actor=session.user, reason=reason)
        except ValueError as exc:
            return self.refused(session, 400, f"{exc}.")
        lines = [(mid, text, text.endswith("marked handled")) for mid, text in zip(ids, out, strict=True)]
        title = "Mark handled"
        ok = sum(ok for *_, ok in lines)
        return page("result.html", session=session, nav="messages", title=title, lines=lines, ok=ok, remaining=0)

    def _audit(self, actor: str, action_: str, mid: int, outcome: str) -> None:
        from adapter.store.db import transaction

        with transaction(self.engine) as conn:
            audit(conn, actor, action_, f"message {mid}", outcome)


def _masked(text: str | None) -> str | None:
    return redact(text) if text else text
