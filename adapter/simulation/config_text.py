"""The adapter config's tables for the ketensimulatie's far sides, one builder per table: the chain (runner),
``simulate --serve-fakes`` and the tests write their configs from these, so a setting renamed in
``adapter/config.py`` or a target's options is renamed here once."""

from __future__ import annotations

from pathlib import Path

#: the bevoegd gezag the simulated adapter is (StUF ontvanger organisatie, werkmap and samenwerken OIN)
OIN = "00000001002564440000"
#: the Omgevingsloket (StUF zender of what it sends, ontvanger of what we send it)
LOKET_OIN = "00000001800866472000"


def chain_toml(
    tmp: Path, mappings: Path, *, workers: int = 2, backoff_initial: float = 0.1, backoff_max: float = 0.5,
    max_attempts: int = 6,
) -> str:  # fmt: skip
    """A throwaway adapter's own tables (the ketensimulatie's chain, a rerun): a fresh SQLite store and file store
    in ``tmp``, fast delivery retries, no scheduled jobs (a scenario runs a job when it says so)."""
    return f"""
[server]
environment = "production"
log_level = "ERROR"
[store]
url = "sqlite:///{tmp / "adapter.db"}"
files_dir = "{tmp / "files"}"
[delivery]
workers = {workers}
poll_interval = 0.05
backoff_initial = {backoff_initial:g}
backoff_factor = 2
backoff_max = {backoff_max:g}
max_attempts = {max_attempts}
mappings_dir = "{mappings}"
[jobs]
enabled = false
"""


def stuf_toml(oin: str = OIN) -> str:
    """Who the adapter answers as (``oin``/ZAAKSYSTEEM) and whom it accepts messages from (the loket)."""
    return f"""
[[stuf.ontvangers]]
organisatie = "{oin}"
applicatie = "ZAAKSYSTEEM"
[[stuf.zenders]]
organisatie = "{LOKET_OIN}"
applicatie = "OLO"
"""


def zgw_target_toml(
    base_url: str, secret: str, *, catalogus: str | None = None, name: str = "zaaksysteem", timeout: float = 5
) -> str:
    """A ``[targets.NAME]`` table for a ZGW zaaksysteem at ``base_url`` (its catalogus: the first one); the
    chain's, ``--serve-fakes``', and the tests' and benchmarks' (``tests/delivery_env.py``)."""
    b = base_url
    catalogus = catalogus or f"{b}/catalogi/api/v1/catalogussen/00000000-0000-0000-0000-000000000001"
    return f"""
[targets.{name}]
kind = "zgw"
zaken_url = "{b}/zaken/api/v1"
documenten_url = "{b}/documenten/api/v1"
catalogi_url = "{b}/catalogi/api/v1"
catalogus = "{catalogus}"
auth = {{ client_id = "loket-adapter", secret = "{secret}" }}
timeout = {timeout:g}
"""


def zds_target_toml(url: str, *, name: str = "zds", oin: str = OIN, timeout: float = 5) -> str:
    """A ``[targets.NAME]`` table for a StUF-ZKN (ZDS 1.2) zaaksysteem at ``url``."""
    return f"""
[targets.{name}]
kind = "stuf-zkn"
url = "{url}"
dialect = "zds-1.2"
zender = {{ organisatie = "{oin}", applicatie = "LOKETADAPTER", administratie = "OMV", gebruiker = "adapter" }}
ontvanger = {{ organisatie = "{oin}", applicatie = "ZAAKSYSTEEM" }}
timeout = {timeout:g}
"""


def werkmap_toml(base_url: str, oin: str = OIN, *, timeout: float = 5, retries: int = 1) -> str:
    """``[werkmap]``: the STAM werkmap at ``base_url`` (its API path included), asked as ``oin``."""
    return f"""
[werkmap]
base_url = "{base_url}"
oin = "{oin}"
timeout = {timeout:g}
retries = {retries}
backoff_initial = 0.05
backoff_max = 0.1
"""


def loket_toml(url: str, oin: str = OIN, *, timeout: float = 5) -> str:
    """``[loket]``: the loket's StUF-LVO endpoint for what we send it (KoppelZaak, adviesverzoeken)."""
    return f"""
[loket]
url = "{url}"
zender = {{ organisatie = "{oin}", applicatie = "ZAAKSYSTEEM" }}
ontvanger = {{ organisatie = "{LOKET_OIN}", applicatie = "OLO" }}
timeout = {timeout:g}
"""


def samenwerken_toml(base_url: str, oin: str = OIN, *, timeout: float = 5) -> str:
    """``[samenwerken]``: DSO samenwerken at ``base_url`` (its API path included), asked as ``oin``."""
    return f"""
[samenwerken]
base_url = "{base_url}"
oin = "{oin}"
timeout = {timeout:g}
"""


def postbox_toml(
    name: str, host: str, port: int, user: str, key_file: Path, host_key: str, folder: Path, *, timeout: float = 10
) -> str:
    """``[postboxes.NAME]``: an SFTP postbox whose inbox, processed and outbox are under ``folder``."""
    return f"""
[postboxes.{name}]
host = "{host}"
port = {port}
user = "{user}"
key_file = "{key_file}"
host_key = "{host_key}"
inbox = "{folder / "inbox"}"
processed = "{folder / "processed"}"
outbox = "{folder / "outbox"}"
timeout = {timeout:g}
reconnect_initial = 0.5
reconnect_max = 5
"""
