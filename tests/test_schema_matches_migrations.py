"""The tables the code queries (``adapter.store.tables``, with ``adapter.advies.store``'s on the same metadata)
are exactly what the migrations build: a column, index or table added to one and not the other fails here,
not in production at the first query. On SQLite, or PostgreSQL with ``LOKET_TEST_DATABASE_URL``."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import adapter.advies.store  # noqa: F401  # its tables join the shared metadata
from adapter.store.db import make_engine, upgrade
from adapter.store.tables import metadata
from tests.conftest import drop_database, new_database_url


def test_migrations_build_the_tables_the_code_declares(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = [d for d in compare_metadata(context, metadata) if not _alembic_own(d)]
    finally:
        engine.dispose()
        drop_database(url)
    assert diff == [], "\n".join(map(str, diff))


def _alembic_own(d: object) -> bool:
    """The apscheduler job store's table and alembic's version table are not ours to declare."""
    text = str(d)
    return "apscheduler_jobs" in text or "alembic_version" in text
