"""``simulate --serve-fakes``: the far sides of the chain, alone, for a tester to point an adapter at.

The loket side (fake werkmap, the STAM notifier that puts a verzoek in it and notifies the adapter, the fake
loket's StUF-LVO endpoint for what the adapter sends, fake samenwerken, an SFTP postbox on a user-level
OpenSSH sshd) and the zaaksysteem side (fake ZGW validating against the OpenAPI files it ships, fake ZDS
validating against the ZDS 1.2 schemas it ships) run on loopback; ``config_toml`` is the adapter config that
reaches all of them, written with the same table builders as the runner's chain.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapter.logs import get_logger
from adapter.simulation import config_text as t
from adapter.simulation.serving import free_port, serve_in_thread

log = get_logger(__name__)

SSHD = Path("/usr/sbin/sshd")
#: the ZDS 1.2 schemas and WSDLs the fake StUF-ZKN zaaksysteem validates against (shipped, README there)
ZDS_SPECS_DIR = Path(__file__).resolve().parent / "fake_zkn_specs"
#: the ZGW secret of the printed config (a development value: the fakes serve loopback only)
SECRET = "serve-fakes-secret-of-32-bytes-or-more"
#: an adviesorganisatie reached through fake samenwerken, so the advice loop can be tried
ADVISEUR_OIN = "00000001823288444000"
#: the port offsets under ``--port-base``: fixed, so a tester's notes stay right from one start to the next
PORTS = {"adapter": 0, "zgw": 1, "zds": 2, "werkmap": 3, "loket": 4, "samenwerken": 5, "notifier": 6, "sftp": 7}


@dataclass
class Postbox:
    """The SFTP postbox: where it listens, how to log in, and its folders on this machine."""

    host: str
    port: int
    user: str
    key_file: Path
    host_key: str
    folder: Path

    def toml(self) -> str:
        return t.postbox_toml("olo", self.host, self.port, self.user, self.key_file, self.host_key, self.folder)


@dataclass
class Fakes:
    """What ``serving_fakes`` runs: the fakes (for a test to look into), their URLs and the matching config."""

    adapter_url: str
    urls: dict[str, str]
    config_toml: str
    fakes: dict[str, Any]
    postbox: Postbox | None
    #: what could not be started, and why (e.g. no sshd on this machine)
    notes: list[str] = field(default_factory=list)


@contextmanager
def serving_fakes(
    *, host: str = "127.0.0.1", port_base: int | None = None, specs: Path | None = None, mappings: Path
) -> Iterator[Fakes]:
    """Start every fake (ports from ``port_base`` on, else free ones); stop them all and remove their
    temporary folder on leaving, whatever happened."""
    from adapter.simulation.fake_loket import ENDPOINT_PATH, FakeLoket
    from adapter.simulation.fake_samenwerken import FakeSamenwerken
    from adapter.simulation.fake_werkmap import FakeWerkmap
    from adapter.simulation.fake_zgw import FakeZgw
    from adapter.simulation.fake_zgw.app import SPECS_DIR
    from adapter.simulation.fake_zkn import FakeZkn

    def port(name: str) -> int | None:
        return port_base + PORTS[name] if port_base is not None else None

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loket-fakes-")))
        adapter_url = f"http://{host}:{port('adapter') or free_port()}"
        served: dict[str, str] = {}

        def serve(name: str, app: Any) -> str:
            url, stop = serve_in_thread(app, host=host, port=port(name))
            stack.callback(stop)
            served[name] = url
            log.info("fake started", fake=name, url=url)
            return url

        zgw = FakeZgw(specs or SPECS_DIR, client_id="loket-adapter", secret=SECRET)
        zgw.base_url = serve("zgw", zgw.app)
        zds = FakeZkn(ZDS_SPECS_DIR, "zds-1.2", wsdl_dir=ZDS_SPECS_DIR)
        zds_url = serve("zds", zds.app)
        werkmap = FakeWerkmap(oin=t.OIN)
        werkmap_url = serve("werkmap", werkmap.app) + werkmap.base_path
        loket = FakeLoket()
        loket_url = serve("loket", loket.app) + ENDPOINT_PATH
        samenwerken = FakeSamenwerken(oin=t.OIN)
        samenwerken_url = serve("samenwerken", samenwerken.app) + samenwerken.base_path
        notifier_url = serve("notifier", notifier_app(werkmap, loket, adapter_url))
        notes = []
        postbox = stack.enter_context(sftp_postbox(host, port("sftp"), tmp))
        if postbox is None:
            notes.append(f"SFTP postbox: not started ({SSHD} or ssh-keygen is absent); the config has none")
        sections = [
            _adapter_toml(host, adapter_url, tmp, mappings),
            t.stuf_toml(t.OIN),
            t.zgw_target_toml(zgw.base_url, SECRET, catalogus=zgw.catalogus_url("catalogussen")),
            t.zds_target_toml(zds_url),
            t.werkmap_toml(werkmap_url, t.OIN),
            t.loket_toml(loket_url, t.OIN),
            t.samenwerken_toml(samenwerken_url, t.OIN),
            f'\n[adviseurs.welstand]\noin = "{ADVISEUR_OIN}"\nnaam = "Welstand (fake samenwerken)"\n'
            'channel = "samenwerken"\n',
        ]
        if postbox is not None:
            sections.append(postbox.toml())
        urls = {
            "zgw": zgw.base_url,
            "zds": zds_url,
            "werkmap": werkmap_url,
            "loket": loket_url,
            "samenwerken": samenwerken_url,
            "notifier": notifier_url,
        }
        if postbox is not None:
            urls["sftp"] = f"sftp://{postbox.user}@{host}:{postbox.port}{postbox.folder}"
        fakes = {"zgw": zgw, "zds": zds, "werkmap": werkmap, "loket": loket, "samenwerken": samenwerken}
        yield Fakes(adapter_url, urls, "".join(sections).lstrip(), fakes, postbox, notes)
        log.info("fakes stopping", fakes=sorted(served))


def _adapter_toml(host: str, adapter_url: str, tmp: Path, mappings: Path) -> str:
    """The adapter's own tables: its address (which the notifier posts to), a store in the fakes' temporary
    folder (it goes when they go), quick retries and jobs, a KoppelZaak to the fake loket per aanvraag."""
    return f"""[server]
host = "{host}"
port = {adapter_url.rsplit(":", 1)[1]}
environment = "development"
log_level = "INFO"
[store]
url = "sqlite:///{tmp / "adapter.db"}"
files_dir = "{tmp / "files"}"
[delivery]
workers = 2
poll_interval = 0.5
backoff_initial = 2
backoff_max = 30
max_attempts = 10
mappings_dir = "{mappings}"
koppel_zaak_aan_aanvraag = true
[jobs]
samenwerken_poll_minutes = 0.5
[postbus]
pickup_minutes = 0.1
mirror_minutes = 0.1
"""


# -- the loket's STAM notifier ------------------------------------------------------------------------------


def notifier_app(werkmap: Any, loket: Any, adapter_url: str) -> Starlette:
    """What the DSO does when a verzoek is submitted, on request: ``POST /verzoeken`` with a verzoek's XML puts
    it in the fake werkmap and posts its verzoeknotificatie to the adapter (``?notify=false``: only the
    former, for the werkmap-poll); ``GET /loket`` lists what the fake loket received from the adapter."""
    from adapter.loket import stam
    from adapter.xmlsafe import XmlRejected, parse

    async def verzoeken(request: Request) -> Response:
        body = await request.body()
        try:
            root = parse(body)
            werkmap.add_verzoek(body)
        except (XmlRejected, ValueError) as exc:
            return JSONResponse({"error": f"not a verzoek the werkmap takes: {exc}"}, status_code=400)
        nummer, volgnummer = stam.verzoeknummer_of(root), stam.volgnummer_of(root)
        out: dict[str, Any] = {"verzoeknummer": nummer, "volgnummer": volgnummer}
        if request.query_params.get("notify", "true").lower() in ("0", "false", "no"):
            return JSONResponse(out, status_code=201)
        notificatie = werkmap.notificatie(nummer, volgnummer)
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.post(
                    f"{adapter_url}/stam/verzoeknotificatie",
                    content=notificatie,
                    headers={"Content-Type": "application/xml"},
                )
        except httpx.HTTPError as exc:
            out["adapter"] = {"error": f"{adapter_url} did not answer: {type(exc).__name__}"}
            return JSONResponse(out, status_code=502)
        log.info("verzoeknotificatie sent", verzoeknummer=nummer, volgnummer=volgnummer, status=r.status_code)
        out["adapter"] = {"status": r.status_code, "answer": r.text}
        return JSONResponse(out, status_code=201)

    async def stuf_lvo(request: Request) -> Response:
        """The loket's StUF-LVO sender: the message gets a referentienummer of its own (the loket never sends
        one twice; the same body again would be a duplicate) and, with ``?nummer=``, that aanvraagnummer."""
        try:
            body, referentie = as_loket_sends(await request.body(), request.query_params.get("nummer"))
        except (XmlRejected, ValueError) as exc:
            return JSONResponse({"error": f"not a StUF-LVO message: {exc}"}, status_code=400)
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.post(
                    f"{adapter_url}/soap/stuf-lvo",
                    content=body,
                    headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                )
        except httpx.HTTPError as exc:
            return JSONResponse({"error": f"{adapter_url} did not answer: {type(exc).__name__}"}, status_code=502)
        log.info("StUF-LVO message sent", referentienummer=referentie, status=r.status_code)
        return JSONResponse({"referentienummer": referentie, "status": r.status_code, "answer": r.text})

    async def received(request: Request) -> Response:
        return JSONResponse([{"bericht": name, "aanvraagnummer": nummer} for name, nummer, _ in loket.received])

    async def usage(request: Request) -> Response:
        return PlainTextResponse(
            "loket-adapter simulate --serve-fakes: the loket's notifier\n"
            "POST /verzoeken (body: a STAM verzoek XML; ?notify=false: only into the werkmap)\n"
            "POST /stuf-lvo (body: a StUF-LVO message, sent on with a new referentienummer; ?nummer=: its "
            "aanvraagnummer)\n"
            "GET /loket (what the fake loket received from the adapter)\n"
        )

    return Starlette(
        routes=[
            Route("/", usage, methods=["GET"]),
            Route("/verzoeken", verzoeken, methods=["POST"]),
            Route("/stuf-lvo", stuf_lvo, methods=["POST"]),
            Route("/loket", received, methods=["GET"]),
        ]
    )


def as_loket_sends(body: bytes, nummer: str | None = None) -> tuple[bytes, str]:
    """A StUF-LVO message (envelope or bare) as the loket sends it: a new referentienummer in its
    stuurgegevens (returned too), the aanvraagnummer set when ``nummer`` is given."""
    from lxml import etree

    from adapter.loket.lvo import LVO
    from adapter.stuf.namespaces import STUF, q
    from adapter.xmlsafe import parse

    root = parse(body)
    ref = next(
        (e for e in root.iter(q(STUF, "referentienummer")) if etree.QName(e.getparent()).localname == "stuurgegevens"),
        None,
    )  # the stuurgegevens are in the sector's namespace (LVO), their fields in StUF's
    if ref is None:
        raise ValueError("it has no stuurgegevens with a StUF:referentienummer")
    ref.text = f"SIM-{uuid.uuid4().hex[:24]}"
    if nummer is not None:
        if not nummer.isdigit() or len(nummer) > 20:
            raise ValueError(f"nummer {nummer!r} is not an aanvraagnummer (digits)")
        for el in root.iter(q(LVO, "aanvraagnummer")):
            el.text = nummer
    return etree.tostring(root, xml_declaration=True, encoding="utf-8"), ref.text


# -- the SFTP postbox ---------------------------------------------------------------------------------------


@contextmanager
def sftp_postbox(host: str, port: int | None, tmp: Path) -> Iterator[Postbox | None]:
    """A user-level OpenSSH sshd serving SFTP (internal-sftp) to the current user with a key made here: its own
    sshd_config, host key and authorized_keys under ``tmp``; None when this machine has no sshd. Stopped by
    its pid on leaving. The system's sshd and its configuration are never touched."""
    keygen = shutil.which("ssh-keygen")
    if not SSHD.exists() or keygen is None:
        yield None
        return
    work = tmp / "sshd"
    folder = tmp / "postbus"
    for d in (work, folder / "inbox", folder / "processed", folder / "outbox"):
        d.mkdir(parents=True)
    for key in ("host", "client"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(work / key)], check=True)
    (work / "authorized_keys").write_bytes((work / "client.pub").read_bytes())
    user = pwd.getpwuid(os.getuid()).pw_name
    port = port or free_port()
    config = work / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress {host}
HostKey {work / "host"}
PidFile {work / "sshd.pid"}
AuthorizedKeysFile {work / "authorized_keys"}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
Subsystem sftp internal-sftp
""",
        encoding="utf-8",
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd started by root wants its privilege separation folder
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"sshd refuses its config: {checked.stderr.strip()}")
    with (work / "log").open("wb") as out:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=out, stderr=out)
    try:
        _wait_for_port(host, port, lambda: proc.poll() is None, work / "log")
        pub = (work / "host.pub").read_text(encoding="utf-8").split()
        log.info("fake started", fake="sftp", port=port, pid=proc.pid)
        yield Postbox(host, port, user, work / "client", f"{pub[0]} {pub[1]}", folder)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_for_port(host: str, port: int, alive: Callable[[], bool], log_file: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline or not alive():
                said = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                raise RuntimeError(
                    f"sshd did not start on {host}:{port}: {said[-1] if said else 'no output'}"
                ) from None
            time.sleep(0.05)
