"""The running adapter's parts, built once from the settings and shared by web app, CLI and workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from adapter.advies.postbus import PostbusSender
from adapter.advies.relay import AdviesRelay
from adapter.advies.samenwerken import SamenwerkenSender, read_advies
from adapter.config import Settings, config_error
from adapter.delivery.sources import Sources
from adapter.delivery.worker import MappingSet, Outbox
from adapter.errors import ConfigError
from adapter.loket.lvo_client import LoketClient, LoketOptions
from adapter.loket.samenwerken import SamenwerkenClient, SamenwerkenOptions
from adapter.loket.werkmap import WerkmapClient, WerkmapOptions
from adapter.postbox.bijlagen import PostbusLookup
from adapter.postbox.mirror import MirrorPlanner
from adapter.schemas import SchemaSet
from adapter.store.db import make_engine, stop_checkpoints
from adapter.store.files import FileStore
from adapter.store.writer import GroupCommitWriter
from adapter.targets.base import Target
from adapter.targets.registry import build_targets


@dataclass
class Services:
    settings: Settings
    engine: Engine
    schemas: SchemaSet
    writer: GroupCommitWriter
    targets: dict[str, Target] = field(default_factory=dict)
    outbox: Outbox | None = None
    werkmap: WerkmapClient | None = None
    #: DSO samenwerken (``[samenwerken]``): adviesverzoeken out, their notifications in (``samenwerken-poll``).
    samenwerken: SamenwerkenClient | None = None
    #: The job scheduler, once ``serve`` started it (``/readyz`` reports a stopped one).
    scheduler: Any = None

    def close(self) -> None:
        if self.outbox:
            self.outbox.stop()
        self.writer.close()
        stop_checkpoints(self.engine)
        self.engine.dispose()


def open_services(settings: Settings, *, with_outbox: bool = True) -> Services:
    """Engine, schemas and writer; with ``with_outbox`` also the targets, mappings and outbox (which need
    every secret: ``Settings.require_env``)."""
    if with_outbox:
        settings.require_env()
    engine = make_engine(
        settings.store_url(),
        lock_timeout_ms=settings.store.lock_timeout_ms,
        pool_size=max(settings.store.pool_size, settings.server.request_threads + settings.delivery.workers),
        background_checkpoints=True,
    )
    services = Services(settings=settings, engine=engine, schemas=SchemaSet(), writer=GroupCommitWriter(engine))
    if with_outbox:
        services.targets = build_targets(settings)
        mappings = MappingSet(resolve_path(settings, settings.delivery.mappings_dir))
        samenwerken = services.samenwerken = build_samenwerken(settings)
        others = {}
        senders: dict[str, Any] = {}
        if samenwerken is not None:
            namen = {n: a.naam for n, a in settings.adviseurs.items() if a.naam}
            others["samenwerken"] = partial(read_advies, engine, samenwerken, samenwerken.options.oin, namen=namen)
            files = file_store(settings)
            limits = settings.inbound.xml_limits()
            senders["samenwerken"] = SamenwerkenSender(engine, settings, samenwerken, files, limits)
        if settings.postboxes:
            files = file_store(settings)
            senders["postbus"] = PostbusSender(engine, settings, files, settings.inbound.xml_limits())
        sources = Sources(
            build_werkmap(settings),
            own_oins(settings),
            settings.inbound.xml_limits(),
            build_postbus(settings, engine),
            others,
        )
        services.werkmap = sources.werkmap
        loket = build_loket(settings)
        advies = AdviesRelay(engine, settings, loket, senders)  # adviesverzoeken out, advice in (adapter.advies)
        services.outbox = Outbox(
            engine,
            settings.delivery,
            services.targets,
            mappings,
            sources,
            loket,
            advies,
            mirror=build_mirror(settings, engine),
        )
    return services


def build_loket(settings: Settings) -> LoketClient | None:
    """The loket client, when ``[loket]`` is configured (validated here: errors name the key)."""
    if not settings.loket:
        if settings.delivery.koppel_zaak_aan_aanvraag:
            raise ConfigError(f"{settings.source}: delivery.koppel_zaak_aan_aanvraag: needs a [loket] table")
        return None
    try:
        return LoketClient(LoketOptions.model_validate(settings.loket))
    except ValidationError as exc:
        raise config_error(exc, settings.source, "loket.") from None


def build_samenwerken(settings: Settings) -> SamenwerkenClient | None:
    """The DSO samenwerken client, when ``[samenwerken]`` is configured (validated here: errors name the key)."""
    if not settings.samenwerken:
        return None
    try:
        options = SamenwerkenOptions.model_validate(settings.samenwerken)
    except ValidationError as exc:
        raise config_error(exc, settings.source, "samenwerken.") from None
    return SamenwerkenClient(options, file_store(settings))


def build_postbus(settings: Settings, engine: Engine) -> PostbusLookup | None:
    """With ``[postboxes.…]``: bijlagen without inhoud wait for their postbus file (``adapter.postbox``)."""
    if not settings.postboxes:
        return None
    files = file_store(settings)
    return PostbusLookup(engine, files, settings.postbus.missing_hours)


def build_mirror(settings: Settings, engine: Engine) -> MirrorPlanner:
    """``[[mirror]]`` rules of the mappings queue delivered documents for these postboxes (a rule naming
    another postbox stops the delivery as needs-attention, and ``mappings check`` reports it)."""
    files = file_store(settings)
    return MirrorPlanner(engine, files, set(settings.postboxes))


def own_oins(settings: Settings) -> frozenset[str]:
    """The OINs that are us (``Settings.own_oins``)."""
    return settings.own_oins()


def build_werkmap(settings: Settings) -> WerkmapClient | None:
    if not settings.werkmap:
        return None
    try:
        options = WerkmapOptions.model_validate(settings.werkmap)
    except ValidationError as exc:
        raise config_error(exc, settings.source, "werkmap.") from None
    return WerkmapClient(options, file_store(settings))


def file_store(settings: Settings) -> FileStore:
    """The file store of ``[store] files_dir`` (werkmap downloads, postbus files, advice documents)."""
    return FileStore(resolve_path(settings, settings.store.files_dir))


def resolve_path(settings: Settings, value: str) -> Path:
    """Relative paths in the config are relative to the config file's folder."""
    p = Path(value)
    if p.is_absolute() or settings.source == "<defaults>":
        return p
    return Path(settings.source).resolve().parent / p
