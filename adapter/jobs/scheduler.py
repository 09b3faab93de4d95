"""The scheduler: APScheduler 3 with its job store in our database, and every job in ``JOBS``.

APScheduler decides *when* a job fires; our lock table decides *whether* this process runs it, so with
several adapter processes on one database a job runs in exactly one of them per interval. Jobs are
referenced by module path (APScheduler pickles references), so they reach the running services
through ``_services``, set when the scheduler starts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from adapter.errors import AdapterError
from adapter.logs import correlation, get_logger
from adapter.services import Services
from adapter.store import jobs as store

log = get_logger("adapter.jobs")
HOLDER = f"{socket.gethostname()}:{os.getpid()}"
_services: Services | None = None


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Services], Any]  # returns an object with found/new/errors/detail
    interval: Callable[[Services], timedelta]
    hold: timedelta = timedelta(minutes=30)  # lock lifetime if the holder dies mid-run


def _werkmap_poll(services: Services) -> Any:
    from adapter.jobs.werkmap_poll import poll

    return poll(services)


def _purge(services: Services) -> Any:
    from adapter.jobs.purge import run

    return run(services)


def _postbox_mirror(services: Services) -> Any:
    from adapter.postbox.mirror import run

    return run(services)


def _postbox_pickup(services: Services) -> Any:
    from adapter.postbox.pickup import run

    return run(services)


def _samenwerken_poll(services: Services) -> Any:
    from adapter.jobs.samenwerken_poll import poll

    return poll(services)


JOBS: dict[str, Job] = {
    "werkmap-poll": Job(
        "werkmap-poll", _werkmap_poll, lambda s: timedelta(minutes=s.settings.jobs.werkmap_poll_minutes)
    ),
    "purge": Job("purge", _purge, lambda s: timedelta(minutes=s.settings.retention.purge_minutes)),
    "postbox-pickup": Job(
        "postbox-pickup", _postbox_pickup, lambda s: timedelta(minutes=s.settings.postbus.pickup_minutes)
    ),
    "postbox-mirror": Job(
        "postbox-mirror", _postbox_mirror, lambda s: timedelta(minutes=s.settings.postbus.mirror_minutes)
    ),
    "samenwerken-poll": Job(
        "samenwerken-poll", _samenwerken_poll, lambda s: timedelta(minutes=s.settings.jobs.samenwerken_poll_minutes)
    ),
}


@dataclass(frozen=True)
class RunOutcome:
    ran: bool
    status: str
    detail: str


def run_job(services: Services, name: str, *, force: bool = False) -> RunOutcome:
    """Run one job now if this process gets its lock (``force`` ignores the once-per-interval rule)."""
    if name not in JOBS:
        raise AdapterError(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    job = JOBS[name]
    interval = None if force else job.interval(services)
    if not store.try_lock(services.engine, name, HOLDER, hold=job.hold, interval=interval):
        return RunOutcome(False, "skipped", "another process holds it, or it already ran this interval")
    run_id = store.start_run(services.engine, name, HOLDER)
    with correlation(job=name, run_id=run_id):
        try:
            result = job.run(services)
        except Exception as exc:  # a job failure is recorded and logged; the scheduler goes on
            detail = str(exc) if isinstance(exc, AdapterError) else f"{type(exc).__name__}: {exc}"
            store.end_run(services.engine, run_id, status="error", errors=1, detail=detail)
            log.error("job failed", detail=detail, exc_info=not isinstance(exc, AdapterError))
            return RunOutcome(True, "error", detail)
        finally:
            store.unlock(services.engine, name, HOLDER)
        status = "error" if result.errors else "ok"
        store.end_run(
            services.engine,
            run_id,
            status=status,
            found=result.found,
            new=result.new,
            errors=result.errors,
            detail=result.detail,
        )
        log.info("job done", status=status, detail=result.detail)
        return RunOutcome(True, status, result.detail)


def fire(name: str) -> None:
    """What APScheduler calls (a module-level function: its job store pickles the reference)."""
    if _services is not None:
        run_job(_services, name)


def start(services: Services) -> BackgroundScheduler:
    global _services
    _services = services
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=services.engine, tablename="apscheduler_jobs")},
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone="Europe/Amsterdam",
    )
    for job in JOBS.values():
        scheduler.add_job(
            fire,
            IntervalTrigger(seconds=job.interval(services).total_seconds()),
            args=[job.name],
            id=job.name,
            name=job.name,
            replace_existing=True,
        )
    scheduler.start()
    return scheduler
