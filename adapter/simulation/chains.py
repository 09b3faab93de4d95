"""A chain: what a municipality runs, started on loopback for one scenario (the adapter's web app, its
delivery workers, a throwaway store, the mapping files under test) with the far sides it needs (fake ZGW, fake
werkmap, and when asked the fake loket, samenwerken and an SFTP postbox on a user-level sshd); or an adapter
already running at ``--url``. Nothing is shared between chains."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapter.simulation import probes
from adapter.simulation.config_text import (
    OIN,
    chain_toml,
    loket_toml,
    samenwerken_toml,
    stuf_toml,
    werkmap_toml,
    zgw_target_toml,
)
from adapter.simulation.results import StepFailed
from adapter.simulation.serving import serve_in_thread
from adapter.simulation.sides import FakeSide, ZgwSide

SECRET = "ketensimulatie-secret-of-32-bytes-or-more"


@dataclass
class Chain:
    """One running chain: the adapter's URL and store, the zaaksysteem it delivers to, and (with the fake)
    the loket's werkmap the STAM verzoeken are fetched from."""

    url: str
    services: Any
    side: FakeSide | ZgwSide
    werkmap: Any = None
    #: the adapter's log events since the chain started (masked)
    log: probes.LogCapture | None = None
    #: the advice loop's far sides (``far`` has "advies"): the loket's StUF-LVO endpoint and DSO samenwerken
    loket: Any = None
    samenwerken: Any = None
    #: the SFTP postbox (``far`` has "postbus"): ``fakes.Postbox``, a real OpenSSH sshd of the current user
    postbox: Any = None


@contextmanager
def chain(
    specs: Path,
    mappings: Path | None,
    config: Path | None = None,
    mapping_extra: str | None = None,
    far: frozenset[str] = frozenset(),
) -> Iterator[Chain]:
    """An adapter on a fresh store delivering to the fake ZGW (started here), or with ``config`` to that
    config's target (its mapping files unless ``mappings`` is given); stopped after. ``mapping_extra``: TOML
    added to a copy of every mapping file (a scenario's own rule; the files under test stay as they are).
    ``far``: the far sides a scenario needs beyond zaaksysteem and werkmap ("advies": loket and samenwerken,
    with two adviseurs; "postbus": an SFTP postbox on a user-level sshd), started only then, so the other
    scenarios' chains stay small."""
    from adapter.app import build_app
    from adapter.config import load_settings
    from adapter.services import open_services
    from adapter.simulation.fake_zgw import FakeZgw
    from adapter.store.db import upgrade

    fake = None
    stops: list[Callable[[], None]] = []
    services = None
    with tempfile.TemporaryDirectory(prefix="ketensimulatie-") as tmp, probes.captured_log() as log:
        try:
            werkmap = None
            if mapping_extra is not None and mappings is not None:
                mappings = _with_extra(mappings, Path(tmp) / "mappings", mapping_extra)
            if config is None:
                from adapter.simulation.fake_werkmap import FakeWerkmap

                fake = FakeZgw(specs, client_id="loket-adapter", secret=SECRET)
                zgw_url, stop_zgw = serve_in_thread(fake.app)
                stops.append(stop_zgw)
                fake.base_url = zgw_url
                werkmap = FakeWerkmap(oin=OIN)
                werkmap_url, stop_werkmap = serve_in_thread(werkmap.app)
                stops.append(stop_werkmap)
                own = Path(tmp) / "config.toml"
                assert mappings is not None
                catalogus = fake.catalogus_url("catalogussen")
                text = _config(Path(tmp), mappings, zgw_url, catalogus, werkmap_url + werkmap.base_path)
                if "advies" in far:
                    loket, samenwerken, more = _advice_sides(stops)
                    text += more
                if "postbus" in far:
                    postbox = _postbox(Path(tmp), stops)
                    text += postbox.toml() + f"\n[postbus]\nmissing_hours = {MISSING_SECONDS / 3600:.6f}\n"
                own.write_text(text, "utf-8")
                settings = load_settings(own)
            else:
                overrides: dict[str, Any] = {
                    "store.url": f"sqlite:///{Path(tmp) / 'adapter.db'}",
                    "store.files_dir": str(Path(tmp) / "files"),
                    "jobs.enabled": False,
                }
                if mappings is not None:
                    overrides["delivery.mappings_dir"] = str(mappings)
                settings = load_settings(config)
                # the chain's own adapter delivers what it receives, whoever drains the outbox where the config
                # is used (workers = 0: another process drains it)
                overrides["delivery.workers"] = max(settings.delivery.workers, 1)
                settings = settings.with_overrides(**overrides)
            services = open_services(settings)
            upgrade(services.engine)
            assert services.outbox is not None
            services.outbox.mappings.get()  # a broken mapping file: one line, before any message
            services.outbox.start()
            url, stop_adapter = serve_in_thread(build_app(services))
            stops.insert(0, stop_adapter)
            c = Chain(url, services, FakeSide(fake) if fake is not None else ZgwSide(services), werkmap, log)
            if "advies" in far and config is None:
                c.loket, c.samenwerken = loket, samenwerken
            if "postbus" in far and config is None:
                c.postbox = postbox
            yield c
        finally:
            for stop in stops[:1]:  # the adapter's web app first: nothing new comes in
                stop()
            if services is not None:
                services.close()
            _all_at_once(stops[1:])  # the fakes: each takes a tick of its server loop to stop


@contextmanager
def running_chain(url: str, config: Path) -> Iterator[Chain]:
    """An adapter someone else started at ``url`` with ``config`` (``simulate --url``): nothing is started
    here; its store and its zaaksysteem are read through that config, as the running adapter writes them."""
    from adapter.config import load_settings
    from adapter.services import open_services

    services = open_services(load_settings(config))
    try:
        yield Chain(url.rstrip("/"), services, ZgwSide(services))
    finally:
        services.close()


def check_adapter(url: str) -> None:
    """Fail in one line, before any scenario, when no adapter answers ``/healthz`` at ``url``."""
    from adapter.errors import ConfigError

    try:
        r = httpx.get(f"{url.rstrip('/')}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        raise ConfigError(f"--url {url}: no adapter answers there ({type(exc).__name__}: {exc})") from None
    if r.status_code != 200:
        raise ConfigError(f"--url {url}: /healthz answered HTTP {r.status_code}, not an adapter that is up")


#: the chain's adviseurs ([adviseurs.NAME]): one per channel of the advice loop
ADVISEURS = {
    "welstand": ("00000001823288444000", "Omgevingsdienst Voorbeeldregio", "stuf-lvo"),
    "brandweer": ("00000001811451278000", "Veiligheidsregio Voorbeeld", "samenwerken"),
}


def _advice_sides(stops: list[Callable[[], None]]) -> tuple[Any, Any, str]:
    """The fake loket (what the adapter sends by StUF-LVO, validated against our schema) and fake samenwerken
    (playing the adviseur), served; and the config that reaches them, with one adviseur per channel."""
    from adapter.simulation.fake_loket import ENDPOINT_PATH, FakeLoket
    from adapter.simulation.fake_samenwerken import FakeSamenwerken

    loket = FakeLoket()
    loket_url, stop = serve_in_thread(loket)
    stops.append(stop)
    samenwerken = FakeSamenwerken(oin=OIN)
    samenwerken_url, stop = serve_in_thread(samenwerken.app)
    stops.append(stop)
    text = loket_toml(loket_url + ENDPOINT_PATH, OIN) + samenwerken_toml(samenwerken_url + samenwerken.base_path, OIN)
    text += "\n[advies]\ntermijn_dagen = 14\n"
    for name, (oin, naam, channel) in ADVISEURS.items():
        text += f'\n[adviseurs.{name}]\noin = "{oin}"\nnaam = "{naam}"\nchannel = "{channel}"\n'
    return loket, samenwerken, text


#: in a chain with a postbox, an aanvraag stops waiting for its postbus files this long after it arrived
MISSING_SECONDS = 1.5


def _postbox(tmp: Path, stops: list[Callable[[], None]]) -> Any:
    """The SFTP postbox on a user-level OpenSSH sshd (``fakes.sftp_postbox``), stopped with the other fakes."""
    from contextlib import ExitStack

    from adapter.simulation.fakes import sftp_postbox

    stack = ExitStack()
    postbox = stack.enter_context(sftp_postbox("127.0.0.1", None, tmp))
    stops.append(stack.close)
    if postbox is None:
        raise StepFailed("the SFTP postbox needs OpenSSH's sshd and ssh-keygen, which this machine lacks")
    return postbox


def _with_extra(mappings: Path, copy: Path, extra: str) -> Path:
    shutil.copytree(mappings, copy)
    for f in copy.glob("*.toml"):
        f.write_text(f.read_text(encoding="utf-8") + "\n" + extra + "\n", encoding="utf-8")
    return copy


def _all_at_once(stops: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=stop) for stop in stops]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _config(tmp: Path, mappings: Path, zgw: str, catalogus: str, werkmap: str) -> str:
    return f"""{chain_toml(tmp, mappings)}
{stuf_toml(OIN)}
{zgw_target_toml(zgw, SECRET, catalogus=catalogus)}
{werkmap_toml(werkmap, OIN)}
"""
