"""The console's other pages: login and logout, jobs, werkmap polls, adviesverzoeken, postboxes with their
orphans, and the audit log (beheerders only). Read-only tables over what the jobs and channels record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapter.logs import get_logger
from adapter.services import Services
from adapter.store import sessions, users
from adapter.store.db import aware, reading
from adapter.store.sessions import Session
from adapter.store.tables import job_locks
from adapter.text import as_utc, short
from adapter.web.console.auth import LOGIN_CSRF_SECONDS, FormTooLarge, Gate, first, form, new_login_token, token_matches
from adapter.web.console.oidc import OidcClient, OidcError
from adapter.web.console.render import page
from adapter.web.console.views import action, signed_in

log = get_logger("adapter.web.console")

#: The jobs whose runs are polls of the loket, shown on their own page.
POLL_JOBS = ("werkmap-poll", "samenwerken-poll")


class Pages:
    def __init__(self, services: Services, gate: Gate) -> None:
        self.services = services
        self.engine = services.engine
        self.gate = gate
        self.settings = services.settings.console
        self.oidc = OidcClient(self.settings.oidc) if self.settings.oidc is not None else None

    def refused(self, session: Session | None, status: int, text: str) -> Response:
        return page("refused.html", status=status, session=session, text=text, nav="")

    # -- login ---------------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if await self.gate.session(request) is not None:
            return RedirectResponse("/console/messages", status_code=303)
        return self._login_form(expired=request.query_params.get("expired") == "1", problem=None, status=200)

    def _login_form(self, *, expired: bool, problem: str | None, status: int) -> Response:
        token = new_login_token()
        response = page(
            "login.html",
            status=status,
            session=None,
            nav="",
            csrf=token,
            expired=expired,
            idle_minutes=f"{self.settings.idle_minutes:g}",
            max_hours=f"{self.settings.max_session_hours:g}",
            problem=problem,
            oidc_label=self.settings.oidc.label if self.settings.oidc is not None else None,
        )
        self.gate.cookies.set(response, self.gate.cookies.login, token, max_age=LOGIN_CSRF_SECONDS)
        return response

    async def login(self, request: Request) -> Response:
        try:
            fields_ = await form(request)
        except FormTooLarge as exc:
            return self.refused(None, 413, str(exc))
        if not token_matches(first(fields_, "csrf"), request.cookies.get(self.gate.cookies.login, "")):
            log.warning("console login refused: csrf")
            return self._login_form(expired=False, problem="The form had expired: log in again.", status=403)
        name, password = first(fields_, "name").strip().lower(), first(fields_, "password")
        role = await run_in_threadpool(users.authenticate, self.engine, name, password) if name and password else None
        if role is None:
            log.warning("console login refused: name or password")
            minutes = users.LOCK.seconds // 60
            lock = f"{users.MAX_FAILED_LOGINS} wrong ones in a row lock the account for {minutes} minutes"
            return self._login_form(expired=False, problem=f"Wrong name or password ({lock}).", status=401)
        token = await run_in_threadpool(sessions.start, self.engine, name, role)
        log.info("console login", user=name, role=role.value)
        response = RedirectResponse("/console/messages", status_code=303)
        self.gate.cookies.set(response, self.gate.cookies.session, token)  # no max_age: gone when the browser closes
        self.gate.cookies.clear(response, self.gate.cookies.login)
        return response

    # -- OpenID Connect --------------------------------------------------------------------------------

    async def oidc_start(self, request: Request) -> Response:
        """Off to the provider, with a new login's state (also in a cookie: the callback must come back to the
        browser that left), nonce and PKCE challenge."""
        if self.oidc is None:
            return self.refused(None, 404, "OpenID Connect is not configured ([console.oidc]).")
        login = await run_in_threadpool(sessions.begin_login, self.engine)
        try:
            url = await run_in_threadpool(self.oidc.authorize_url, login)
        except OidcError as exc:
            log.warning("console oidc unavailable", problem=str(exc))
            return self._login_form(expired=False, problem=f"Single sign-on failed: {exc}.", status=502)
        response = RedirectResponse(url, status_code=303)
        # Lax, not Strict: the provider's redirect back is a navigation from another site
        response.set_cookie(
            self.gate.cookies.oidc, login.state, max_age=600, path="/", secure=self.gate.cookies.secure,
            httponly=True, samesite="lax",
        )  # fmt: skip
        return response

    async def oidc_callback(self, request: Request) -> Response:
        if self.oidc is None:
            return self.refused(None, 404, "OpenID Connect is not configured ([console.oidc]).")
        q = request.query_params
        if q.get("error"):
            return self._login_form(expired=False, problem=f"The login provider refused: {q['error']}.", status=401)
        state, code = q.get("state", ""), q.get("code", "")
        if not code or not token_matches(state, request.cookies.get(self.gate.cookies.oidc, "")):
            log.warning("console oidc refused: state")
            return self._login_form(expired=False, problem="This login did not start in this browser.", status=403)
        login = await run_in_threadpool(sessions.take_login, self.engine, state)
        if login is None:
            return self._login_form(expired=False, problem="This login expired or was used already.", status=403)
        try:
            name, role = await run_in_threadpool(self.oidc.finish, code, login)
        except OidcError as exc:
            log.warning("console oidc refused", problem=str(exc))
            return self._login_form(expired=False, problem=f"Single sign-on failed: {exc}.", status=401)
        token = await run_in_threadpool(sessions.start, self.engine, name, role, how="oidc")
        log.info("console login", user=name, role=role.value, how="oidc")
        # a page, not a redirect: the Strict session cookie is only sent once the browser is back on our site
        response = page("continue.html", session=None, nav="")
        self.gate.cookies.set(response, self.gate.cookies.session, token)
        self.gate.cookies.clear(response, self.gate.cookies.oidc)
        return response

    @action(beheerder=False)
    async def logout(self, request: Request, session: Session, fields_: dict[str, list[str]]) -> Response:
        await run_in_threadpool(sessions.end, self.engine, session)
        response = RedirectResponse("/console/login", status_code=303)
        self.gate.cookies.clear(response, self.gate.cookies.session)
        return response

    # -- read-only tables ----------------------------------------------------------------------------

    def _table(self, session: Session, nav: str, title: str, sections: list[dict[str, Any]]) -> Response:
        return page("tables.html", session=session, nav=nav, title=title, sections=sections)

    @signed_in
    async def jobs_page(self, request: Request, session: Session) -> Response:
        return self._table(session, "jobs", "Jobs", await run_in_threadpool(self._jobs))

    def _jobs(self) -> list[dict[str, Any]]:
        from adapter.jobs.scheduler import JOBS
        from adapter.store.jobs import recent_runs

        with reading(self.engine) as conn:
            locks = {r.name: r for r in conn.execute(select(job_locks))}
        now = datetime.now(UTC)
        rows = []
        for job in JOBS.values():
            every = job.interval(self.services)
            last = recent_runs(self.engine, job.name, limit=1)
            lock = locks.get(job.name)
            started = aware(lock.last_started_at) if lock is not None else None
            due = started + every if started is not None else None
            rows.append(
                [
                    job.name,
                    f"{every.total_seconds() / 60:g} min",
                    started,
                    (due if due is None or due > now else "due now"),
                    last[0].status if last else "never run",
                    short(last[0].detail, 100) if last else "",
                ]
            )
        runs = [_run_row(r) for r in recent_runs(self.engine, limit=50)]
        running = (
            "" if self.services.scheduler is None else ("running" if self.services.scheduler.running else "STOPPED")
        )
        return [
            {
                "title": "Scheduled jobs"
                + (f" (scheduler {running})" if running else " (no scheduler in this process)"),
                "headers": ["Job", "Every", "Last start (UTC)", "Next run (UTC)", "Last result", "Detail"],
                "rows": rows,
            },
            {"title": "Recent runs", "headers": RUN_HEADERS, "rows": runs},
        ]

    @signed_in
    async def polls_page(self, request: Request, session: Session) -> Response:
        return self._table(session, "polls", "Werkmap polls", await run_in_threadpool(self._polls))

    def _polls(self) -> list[dict[str, Any]]:
        from adapter.store.jobs import recent_runs

        return [
            {"title": name, "headers": RUN_HEADERS, "rows": [_run_row(r) for r in recent_runs(self.engine, name, 50)]}
            for name in POLL_JOBS
        ]

    @signed_in
    async def advies_page(self, request: Request, session: Session) -> Response:
        return self._table(session, "advies", "Adviesverzoeken", await run_in_threadpool(self._advies))

    def _advies(self) -> list[dict[str, Any]]:
        from adapter.advies.store import list_adviesverzoeken

        rows = [
            [
                a.id,
                a.aanvraagnummer,
                a.adviseur,
                a.channel,
                a.effective_state(),
                a.einddatum,
                a.created_at,
                a.advies_strekking,
            ]
            for a in list_adviesverzoeken(self.engine, limit=200)
        ]
        headers = ["Id", "Aanvraag", "Adviseur", "Channel", "State", "Einddatum", "Created (UTC)", "Advies"]
        return [{"title": "Newest 200", "headers": headers, "rows": rows}]

    @signed_in
    async def postboxes_page(self, request: Request, session: Session) -> Response:
        return self._table(session, "postboxes", "Postboxes", await run_in_threadpool(self._postboxes))

    def _postboxes(self) -> list[dict[str, Any]]:
        from adapter.store import postbox, uploads

        status = postbox.statuses(self.engine)
        upload_counts = uploads.counts(self.engine)
        rows = []
        for name in sorted(set(self.services.settings.postboxes) | set(status)):
            s = status.get(name)
            counts = upload_counts.get(name, {})
            rows.append(
                [
                    name,
                    s.last_success_at if s else None,
                    s.last_error_at if s else None,
                    short(s.last_error, 100) if s else "",
                    s.failures if s else 0,
                    ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
                ]
            )
        orphans = [
            [f.postbox, f.remote_name, f.aanvraagnummer, f.size, f.first_seen_at, f.stored_at]
            for f in postbox.orphans(self.engine)
        ]
        return [
            {
                "title": "Postboxes",
                "headers": ["Postbox", "Last success (UTC)", "Last error (UTC)", "Error", "Failures", "Uploads"],
                "rows": rows,
            },
            {
                "title": f"Orphans: stored files no message claims ({len(orphans)})",
                "headers": ["Postbox", "File", "Aanvraag", "Bytes", "First seen (UTC)", "Stored (UTC)"],
                "rows": orphans,
                "attention": bool(orphans),
            },
        ]

    @signed_in
    async def audit_page(self, request: Request, session: Session) -> Response:
        if not session.may_act:
            return self.refused(session, 403, "The audit log is for beheerders.")
        entries = await run_in_threadpool(users.audit_entries, self.engine, 500)
        rows = [[e.at, e.actor, e.action, e.target, e.reason] for e in entries]
        headers = ["At (UTC)", "Who", "What", "Which", "Why / outcome"]
        return self._table(session, "audit", "Audit log", [{"title": "Newest 500", "headers": headers, "rows": rows}])


RUN_HEADERS = ["Run", "Job", "Started (UTC)", "Seconds", "Status", "Found", "New", "Errors", "Detail"]


def _run_row(r: Any) -> list[Any]:
    took = (as_utc(r.ended_at) - as_utc(r.started_at)).total_seconds() if r.ended_at else None
    return [
        r.id,
        r.name,
        r.started_at,
        f"{took:.1f}" if took is not None else "",
        r.status,
        r.found,
        r.new,
        r.errors,
        short(r.detail, 100),
    ]
