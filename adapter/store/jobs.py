"""Job locks and job runs. A single conditional UPDATE takes the lock, so it works the same on SQLite
and PostgreSQL and across any number of adapter processes: the job runs in exactly one of them per
interval, and a crashed holder's lock expires."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Row, insert, or_, select, update
from sqlalchemy import exc as sa_exc

from adapter.store.db import reading, transaction
from adapter.store.outbox import now
from adapter.store.tables import job_locks, job_runs


def try_lock(engine: Engine, name: str, holder: str, *, hold: timedelta, interval: timedelta | None) -> bool:
    """Take the job's lock unless another process holds it or (with ``interval``) it already started
    within this interval. Returns True when this process may run the job now."""
    t = now()
    try:
        with transaction(engine) as conn:
            conn.execute(insert(job_locks).values(name=name))
    except sa_exc.IntegrityError:
        pass  # the row exists
    cond = [job_locks.c.name == name, or_(job_locks.c.locked_until.is_(None), job_locks.c.locked_until < t)]
    if interval is not None:
        # a little slack, so a scheduler firing a moment early still gets its turn
        cond.append(or_(job_locks.c.last_started_at.is_(None), job_locks.c.last_started_at <= t - interval * 0.9))
    with transaction(engine) as conn:
        got = conn.execute(
            update(job_locks).where(*cond).values(holder=holder, locked_until=t + hold, last_started_at=t)
        ).rowcount
        if got == 0:
            # a holder on this host whose process is gone (kill -9, a crash) holds nothing: its lock would
            # otherwise block the job until ``hold`` runs out (30 min), e.g. a restarted serve's pickup
            dead = conn.execute(select(job_locks.c.holder).where(job_locks.c.name == name)).scalar()
            if dead and dead != holder and _gone(dead):
                cond[1] = job_locks.c.holder == dead
                got = conn.execute(
                    update(job_locks).where(*cond).values(holder=holder, locked_until=t + hold, last_started_at=t)
                ).rowcount
    return got == 1


def _gone(holder: str) -> bool:
    """The holder (``host:pid``) ran on this host and its process no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def unlock(engine: Engine, name: str, holder: str) -> None:
    with transaction(engine) as conn:
        conn.execute(
            update(job_locks).where(job_locks.c.name == name, job_locks.c.holder == holder).values(locked_until=None)
        )


def start_run(engine: Engine, name: str, holder: str) -> int:
    with transaction(engine) as conn:
        return conn.execute(
            insert(job_runs)
            .values(name=name, holder=holder, started_at=now(), status="running")
            .returning(job_runs.c.id)
        ).scalar_one()


def end_run(
    engine: Engine, run_id: int, *, status: str, found: int = 0, new: int = 0, errors: int = 0, detail: str = ""
) -> None:
    with transaction(engine) as conn:
        conn.execute(
            update(job_runs)
            .where(job_runs.c.id == run_id)
            .values(ended_at=now(), status=status, found=found, new=new, errors=errors, detail=detail[:4000])
        )


def recent_runs(engine: Engine, name: str | None = None, limit: int = 20) -> list[Row[Any]]:
    q = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
    if name:
        q = q.where(job_runs.c.name == name)
    with reading(engine) as conn:
        return list(conn.execute(q))
