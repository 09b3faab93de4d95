"""Delivery worker: claim due deliveries, map the stored message, let its target carry it out with
checkpoints, then mark it done, schedule a retry with capped exponential backoff, or declare it dead.

One failing delivery never blocks the others (each is claimed and finished on its own); deliveries of
one verzoek run in order (see ``store.outbox.claim``). Worker threads run inside ``serve``; an
operator's resend runs the same code in the CLI process and reports the real outcome.

A running delivery keeps its lease with a heartbeat thread, so a delivery of any length (thousands of
calls, one call that blocks for longer than the lease) is not taken over while it runs. A run that loses
its lease anyway (the process stalled past it) writes nothing and stops at its next step: the outcome
``lease-lost`` (``adapter.store.lease``).
"""

from __future__ import annotations

import contextvars
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from adapter import recording
from adapter.advies.relay import AdviesRelay
from adapter.config import DeliverySettings
from adapter.delivery.sources import Sources
from adapter.errors import (
    AdapterError,
    HintNotConfirmed,
    LeaseLost,
    MappingError,
    StoreUnavailable,
    WaitingError,
    is_transient,
)
from adapter.logs import correlation, get_logger, personal_values, redact, redact_values
from adapter.loket.lvo_client import LoketClient, koppel_zaak
from adapter.loket.stam_parse import is_kopiebericht
from adapter.mapping.engine import build_opdracht
from adapter.mapping.loader import LoadedMapping, load_dir
from adapter.mapping.opdracht import Overdracht
from adapter.model import Soort, Verzoek
from adapter.postbox.mirror import MirrorPlanner
from adapter.store import messages as message_store
from adapter.store import outbox as store
from adapter.store import retention
from adapter.store.lease import Lease, holder_of
from adapter.store.outbox import Claimed, DState
from adapter.targets.base import Result, Target, run_step

log = get_logger("adapter.delivery")


class MappingSet:
    """The mapping files, reloaded when one changes; a broken edit keeps the last good set."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[tuple[str, float], ...] = ()
        self._loaded: list[LoadedMapping] | None = None
        self._lock = threading.Lock()

    def _current_stamp(self) -> tuple[tuple[str, float], ...]:
        return tuple((p.name, p.stat().st_mtime) for p in sorted(self.directory.glob("*.toml")))

    def get(self) -> list[LoadedMapping]:
        with self._lock:
            stamp = self._current_stamp() if self.directory.is_dir() else ()
            if self._loaded is None or stamp != self._stamp:
                try:
                    self._loaded = load_dir(self.directory)
                    self._stamp = stamp
                except AdapterError:
                    if self._loaded is None:
                        raise
                    log.error("mapping files changed but do not load; keeping the previous ones", exc_info=False)
            return self._loaded


@dataclass(frozen=True)
class Report:
    message_id: int
    delivery_id: int
    state: str  # done | retry | dead | needs-attention | lease-lost (another worker has it now)
    detail: str

    def line(self) -> str:
        return f"message {self.message_id}: {self.state}: {self.detail}"


LEASE_LOST = "lease-lost"
STORE_DOWN = "store unavailable; delivery paused until it is back"


class Heartbeat:
    """Renews a running delivery's lease every third of its duration, from a thread of its own: the run's
    thread may block in one call for longer than the lease. Stops when the run ends or the lease is lost
    (the run then stops at its next step); a store that cannot be reached is tried again next beat."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._stop = threading.Event()
        # the run's correlation id and delivery fields on its log lines
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._beat,), name=f"lease-{lease.delivery_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        every = self.lease.duration.total_seconds() / 3
        while not self._stop.wait(every):
            try:
                if not self.lease.renew():
                    return  # lost: the run reports it (once) when it stops
            except Exception as exc:  # the store is down: the run's own writes fail too; try again
                log.warning("lease renewal failed; trying again", error=str(exc), every=every)


class Outbox:
    def __init__(
        self,
        engine: Engine,
        settings: DeliverySettings,
        targets: dict[str, Target],
        mappings: MappingSet,
        sources: Sources,
        loket: LoketClient | None = None,
        advies: AdviesRelay | None = None,
        mirror: MirrorPlanner | None = None,
    ) -> None:
        self.engine = engine
        #: adviesverzoeken: their relay out, and the advice back in (``adapter.advies``)
        self.advies = advies
        self.settings = settings
        self.targets = targets
        self.mappings = mappings
        self.sources = sources
        self.loket = loket
        #: ``[[mirror]]`` rules: documents of a delivered verzoek queued for postboxes (``adapter.postbox.mirror``)
        self.mirror = mirror
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: True while the store is unreachable: the workers log an outage once, not a traceback per poll
        self._store_down = False
        self._store_down_lock = threading.Lock()

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    # -- one delivery ------------------------------------------------------------------------------------
    def run(self, c: Claimed) -> Report:
        row = message_store.get_message(self.engine, c.message_id)
        assert row is not None
        with (
            correlation(row.correlation_id, message_id=c.message_id, delivery_id=c.id),
            recording.delivering(c.message_id),
        ):
            lease = c.lease(self.engine, self.lease)
            heartbeat = Heartbeat(lease)
            heartbeat.start()
            try:
                return self._run(c, row, lease, heartbeat)
            except LeaseLost as exc:
                return self._lease_lost(c, exc)
            finally:
                heartbeat.stop()

    def _lease_lost(self, c: Claimed, exc: LeaseLost) -> Report:
        """The distinct outcome of a run that was taken over: logged once, nothing recorded (the delivery's
        row, checkpoints and attempts belong to the new holder now)."""
        holder = holder_of(self.engine, c.id)
        log.warning("delivery lease lost; run stopped", fence=c.fence, **holder)
        return Report(c.message_id, c.id, LEASE_LOST, str(exc))

    def _run(self, c: Claimed, row: message_store.StoredMessage, lease: Lease, heartbeat: Heartbeat) -> Report:
        started = store.now()
        t0 = time.monotonic()
        attempts = c.attempts + 1
        target_name: str | None = None
        steps: store.DbSteps | None = None
        try:
            lease.check()  # claimed in a batch and started late: still ours?
            steps = store.DbSteps(self.engine, c.id, "", lease)
            retention.check_not_purged(row)  # purged while a resend was on its way: needs-attention, saying so
            if self.advies is not None and self.advies.handles(row):
                summary = self.advies.relay(row, steps)  # an adviesverzoek we put out (adapter.advies)
            else:
                summary = self._verzoek(c, row, lease, steps)
            target_name = steps.target or None
        except Exception as exc:  # every failure is recorded; only unexpected ones carry a traceback
            if isinstance(exc, LeaseLost):
                raise  # not ours to record; any other failure after a takeover is refused by finish
            expected = isinstance(exc, AdapterError)
            # stored and logged: a zaaksysteem may quote a value back (a name it found too long)
            error = redact(str(exc) if expected else f"{type(exc).__name__}: {exc}")
            permanent = not is_transient(exc)
            waits_until = exc.until if isinstance(exc, WaitingError) else None
            dead = attempts >= self.settings.max_attempts and not (waits_until and store.now() < waits_until)
            state = DState.NEEDS_ATTENTION if permanent else DState.DEAD if dead else DState.RETRY
            if isinstance(exc, HintNotConfirmed):
                state = DState.HINT_REFUSED  # kept for the operator; gives its key to the next notification
            delay = store.backoff(
                attempts,
                initial=self.settings.backoff_initial,
                factor=self.settings.backoff_factor,
                max_delay=self.settings.backoff_max,
            )
            heartbeat.stop()  # before the lease ends with the outcome, so no beat comes after it
            store.finish(
                self.engine,
                c,
                state=state,
                attempts=attempts,
                next_attempt_at=store.now() + delay,
                error=error,
                target=(steps.target or None) if steps else None,  # routed already, even if it failed after
                attempt=self._attempt(
                    started, t0, "waiting" if isinstance(exc, WaitingError) else "error", error, steps
                ),
                steps=steps,  # what did succeed is kept, so the retry skips it
            )
            if expected:
                log.warning("delivery failed", state=state.value, attempt=attempts, error=error, retry_in=delay.seconds)
            else:
                log.error("delivery failed unexpectedly", state=state.value, attempt=attempts, exc_info=True)
            if permanent:
                detail = f"{error} (not retried: fix the cause, then `messages resend {c.message_id}`)"
            elif dead:
                detail = error
            else:
                detail = f"{error} (attempt {attempts}/{self.settings.max_attempts}, retry in {delay})"
            return Report(c.message_id, c.id, state.value, detail)
        heartbeat.stop()
        summary = redact(summary)  # stored and shown like an error: a target may name a betrokkene in it
        store.finish(
            self.engine,
            c,
            state=DState.DONE,
            attempts=attempts,
            outcome=summary,
            target=target_name,
            attempt=self._attempt(started, t0, "ok", None, steps),
            steps=steps,
        )
        log.info("delivered", target=target_name, summary=summary, attempt=attempts)
        return Report(c.message_id, c.id, DState.DONE.value, summary)

    def _verzoek(self, c: Claimed, row: message_store.StoredMessage, lease: Lease, steps: store.DbSteps) -> str:
        """A received message: read it as a verzoek and deliver it."""
        sourced = self.sources.verzoek_for(row, steps)
        redact_values(personal_values(sourced.verzoek))  # masked in this run's log lines and last error
        lease.check()
        if row.channel == "stam" and not message_store.confirm_hint(self.engine, c.message_id):
            raise HintNotConfirmed(
                f"a later notification of verzoek {row.nummer} volgnummer {row.volgnummer} took over this "
                f"refused hint's duplicate key and delivers it (`messages list --nummer {row.nummer}`)"
            )
        if sourced.warnings is not None and sourced.warnings != row.warnings:
            message_store.set_warnings(self.engine, c.message_id, sourced.warnings)
        if sourced.warnings:
            log.warning("verzoek read with warnings", count=len(sourced.warnings), first=sourced.warnings[0])
        verzoek = sourced.verzoek
        recording.checkpoint("verzoek", verzoek)
        # an advice answering one of our adviesverzoeken: recorded (gereed) before it goes to the zaak
        av = self.advies.advies_ontvangen(row, verzoek) if self.advies and verzoek.soort is Soort.ADVIES else None
        summary = self._deliver(verzoek, steps, c.message_id)
        if av is not None and self.advies is not None:
            summary += self.advies.advies_afgeleverd(av, row, verzoek, steps)
        return summary

    def _deliver(self, verzoek: Verzoek, steps: store.DbSteps, message_id: int | None = None) -> str:
        """Map and hand to the target; a kopiebericht is only kept, a transfer goes back to the werkmap."""
        if verzoek.bron == "stam" and is_kopiebericht(verzoek, set(self.sources.own_oins)):
            inst = verzoek.uitvoerende_instantie.oin if verzoek.uitvoerende_instantie else "?"
            return f"kopiebericht (uitvoerende instantie {inst}): opgeslagen, geen zaak"
        opdracht = build_opdracht(self.mappings.get(), verzoek)
        recording.checkpoint("opdracht", opdracht)
        steps.target = opdracht.target
        if opdracht.overdracht is not None:
            return self._overdragen(verzoek, opdracht.overdracht, steps)
        target = self.targets.get(opdracht.target)
        if target is None:
            raise MappingError(f"mapping routes to target {opdracht.target!r}, which is not configured")
        summary = target.deliver(opdracht, steps) + self._koppel_zaak(verzoek, steps)
        if self.mirror is not None:
            summary += self.mirror.plan(self.mappings.get(), opdracht, steps, message_id)
        return summary

    def _overdragen(self, verzoek: Verzoek, overdracht: Overdracht, steps: store.DbSteps) -> str:
        werkmap = self.sources.werkmap
        if werkmap is None:
            raise MappingError("a transfer rule matched, but [werkmap] is not configured")

        # No find: the werkmap has no query for transfers. A repeated overdragen of the same verzoek to the
        # same party asks for the same transfer (the reconstructed contract answers 202 and knows no
        # conflict), so a retry after a lost answer is expected to change nothing.
        def overdragen() -> Result:
            werkmap.overdragen(verzoek.nummer, overdracht.naar, overdracht.rol, overdracht.toelichting)
            return {}  # answered with 202 and no body: done is all there is to remember

        run_step(steps, "werkmap:overdragen", overdragen)
        return f"overgedragen aan {overdracht.naar} als {overdracht.rol} (mapping-regel); geen zaak hier"

    def _koppel_zaak(self, verzoek: Verzoek, steps: store.DbSteps) -> str:
        """Tell the loket which zaak handles a StUF-LVO aanvraag (a checkpointed step of its own).

        No find before create: the loket cannot be asked what it received. After a lost answer the retry
        sends the koppeling again under a new referentienummer; it names the same aanvraag and zaak, so
        the loket's state is the same after one or two (idempotent by content, not by message)."""
        if not (self.settings.koppel_zaak_aan_aanvraag and self.loket) or verzoek.bron != "stuf-lvo":
            return ""
        if not verzoek.soort.creates_zaak:
            return ""
        zaak = steps.zaak(verzoek.nummer)
        if zaak is None or not zaak.get("identificatie"):
            return ""
        loket = self.loket

        def send() -> dict[str, str]:
            el = koppel_zaak(verzoek.nummer, zaak["identificatie"])
            steps.called(f"koppel:loket: vrgDi01KoppelZaakAanAanvraag {verzoek.nummer} → {zaak['identificatie']}")
            return {"referentienummer": loket.send(el)}

        run_step(steps, "koppel:loket", send)
        return f"; gekoppeld aan aanvraag {verzoek.nummer} in het loket"

    @staticmethod
    def _attempt(started: object, t0: float, status: str, error: str | None, steps: store.DbSteps | None) -> dict:
        return {
            "started_at": started,
            "duration_ms": int((time.monotonic() - t0) * 1000),
            "status": status,
            "error": error,
            "calls": json.dumps(steps.calls if steps else []),
        }

    # -- workers -----------------------------------------------------------------------------------------
    def work_once(self, limit: int = 1) -> list[Report]:
        claimed = store.claim(self.engine, self.worker_id, self.lease, limit)
        self._store_available()
        return [self.run(c) for c in claimed]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.work_once()
            except StoreUnavailable as exc:
                self._store_unavailable(exc)
                done = []
            except Exception:
                log.error("delivery worker error", exc_info=True)
                done = []
            if not done:
                self._stop.wait(self.settings.poll_interval)

    def _store_unavailable(self, exc: StoreUnavailable) -> None:
        """One line per outage for all workers; the run it cut short is retaken once its lease runs out."""
        with self._store_down_lock:
            first, self._store_down = not self._store_down, True
        if first:
            log.warning(STORE_DOWN, error=str(exc))

    def _store_available(self) -> None:
        if not self._store_down:  # the common case, without the lock
            return
        with self._store_down_lock:
            was, self._store_down = self._store_down, False
        if was:
            log.info("store available again; delivery resumed")

    def start(self) -> None:
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._loop, name=f"delivery-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    def dead_workers(self) -> list[str]:
        """Names of started worker threads that are no longer running (``/readyz``)."""
        return [t.name for t in self._threads if not t.is_alive()]

    # -- operator resend ---------------------------------------------------------------------------------
    def resend(self, message_ids: list[int]) -> list[Report | str]:
        """Reset attempts and run each now; returns a Report, or a line saying why it was not run."""
        by_message = store.deliveries_for_messages(self.engine, message_ids)
        purged = retention.purged_at(self.engine, message_ids)
        out: list[Report | str] = []
        for mid in message_ids:
            did = by_message.get(mid)
            if mid in purged:
                out.append(f"message {mid}: not resent: {retention.purged_text(purged[mid])}")
                continue
            if did is None:
                out.append(f"message {mid}: has no delivery (rejected or unknown)")
                continue
            claimed = store.claim_ids(self.engine, [did], self.worker_id, self.lease)
            if not claimed:
                out.append(f"message {mid}: being delivered by another worker right now; not resent")
                continue
            out.append(self.run(claimed[0]))
        return out
