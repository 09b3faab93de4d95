"""Engine creation and schema migration for SQLite (embedded) and PostgreSQL (production).

SQLite runs in WAL mode with ``synchronous=FULL``: a Bv03 is only sent after a commit that survives
power loss, as StUF requires. Every transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers
queue on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from adapter.config import IN_MEMORY, sqlite_file
from adapter.errors import ConfigError, StoreUnavailable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def aware(t: datetime | None) -> datetime | None:
    """T as UTC-aware (SQLite hands back naive UTC); None stays None."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str, *, lock_timeout_ms: int = 5000, pool_size: int = 10, background_checkpoints: bool = False
) -> Engine:
    """An engine for ``url``. With ``background_checkpoints`` (the long-running server) SQLite's WAL is
    checkpointed by a daemon thread every second instead of by whichever commit crosses 1000 pages —
    that commit would otherwise hold up every message acknowledged with it."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        file = sqlite_file(u.database)
        if file is None:
            raise ValueError(IN_MEMORY)
        identity = _owner_only_file(Path(file).expanduser())
        engine = create_engine(
            u,
            connect_args={"timeout": lock_timeout_ms / 1000, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(lock_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            # a purged body (retention, AVG) is overwritten with zeros, not left in a free page (Debian's
            # SQLite has this on by default; other builds do not)
            cur.execute("PRAGMA secure_delete=ON")
            if background_checkpoints:
                # checkpoints run in their own thread (below), not inside a commit that acks a message
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        _identities[engine] = identity
        if background_checkpoints:
            stop = threading.Event()
            _checkpointers[id(engine)] = stop
            threading.Thread(
                target=_checkpoint_loop, args=(str(engine.url.database), stop), name="sqlite-checkpoint", daemon=True
            ).start()
        return engine
    if u.get_backend_name() == "postgresql":
        options = f"-c lock_timeout={int(lock_timeout_ms)} -c idle_in_transaction_session_timeout=60000"
        return create_engine(
            u,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={"options": options, "connect_timeout": max(1, lock_timeout_ms // 1000)},
        )
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql+psycopg")


_sqlite_writer = threading.Lock()
#: The SQLite file each engine opened, as (path, device, inode): see ``check_same_file``.
_identities: weakref.WeakKeyDictionary[Engine, tuple[Path, int, int]] = weakref.WeakKeyDictionary()


def _owner_only_file(path: Path) -> tuple[Path, int, int]:
    """Create the database file readable by the service alone, or tighten an existing one: message bodies
    carry citizens' personal data. SQLite gives its -wal and -shm files the same mode. A missing folder is an
    error, not made: a mistyped path would otherwise start an empty store beside the real one."""
    path = path.resolve()
    if not path.parent.is_dir():
        raise ConfigError(f"store.url: folder {path.parent} does not exist (create it, for the service alone)")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists() and extra.stat().st_mode & 0o077:
            extra.chmod(0o600)
    return path, st.st_dev, st.st_ino


def check_same_file(engine: Engine) -> None:
    """Raise StoreUnavailable unless the SQLite file the engine opened is still there, the same file, and
    writable. SQLite keeps writing into a deleted (or replaced) file through its open handle: without this
    check an acknowledged message would go where nobody will ever read it."""
    identity = _identities.get(engine)
    if identity is None:
        return
    path, dev, ino = identity
    try:
        st = path.stat()
    except OSError:
        raise StoreUnavailable(f"store unavailable: database file {path.name} is gone") from None
    if (st.st_dev, st.st_ino) != (dev, ino):
        raise StoreUnavailable(f"store unavailable: database file {path.name} was replaced") from None
    if not st.st_mode & 0o200:
        raise StoreUnavailable(f"store unavailable: database file {path.name} is read-only") from None


_checkpointers: dict[int, threading.Event] = {}


def stop_checkpoints(engine: Engine) -> None:
    """End the engine's background checkpoint thread (``Services.close``)."""
    stop = _checkpointers.pop(id(engine), None)
    if stop is not None:
        stop.set()


def _checkpoint_loop(database: str, stop: threading.Event, every: float = 1.0) -> None:
    """PASSIVE checkpoints never block writers or readers. Opens the file read-write only, so a removed
    database is not created again."""
    import sqlite3

    while not stop.wait(every):
        try:
            raw = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=1)
        except sqlite3.Error:
            return
        try:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # busy: try again next time
        finally:
            raw.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction; any database failure other than a constraint becomes StoreUnavailable."""
    lock = _sqlite_writer if is_sqlite(engine) else nullcontext()
    try:
        with lock, engine.begin() as conn:
            yield conn
            check_same_file(engine)  # before the commit that an acknowledgement will rest on
    except exc.IntegrityError:
        raise
    except (exc.OperationalError, exc.InterfaceError, exc.DatabaseError) as e:
        raise StoreUnavailable(f"store unavailable: {_short(e)}") from e


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            yield conn
    except (exc.OperationalError, exc.InterfaceError, exc.DatabaseError) as e:
        raise StoreUnavailable(f"store unavailable: {_short(e)}") from e


def _short(e: exc.DBAPIError | exc.SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig) if orig is not None else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; safe to run at every start)."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except (exc.OperationalError, exc.InterfaceError) as e:
        raise StoreUnavailable(f"store unavailable: {_short(e)}") from e


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with reading(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()
