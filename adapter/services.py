"""The running adapter's parts, built once from the settings and shared by web app, CLI and workers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from adapter.config import Settings
from adapter.schemas import SchemaSet
from adapter.store.db import make_engine
from adapter.store.writer import GroupCommitWriter


@dataclass
class Services:
    settings: Settings
    engine: Engine
    schemas: SchemaSet
    writer: GroupCommitWriter

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()


def open_services(settings: Settings) -> Services:
    engine = make_engine(
        settings.store.url,
        lock_timeout_ms=settings.store.lock_timeout_ms,
        pool_size=max(settings.store.pool_size, settings.server.request_threads),
    )
    return Services(settings=settings, engine=engine, schemas=SchemaSet(), writer=GroupCommitWriter(engine))
