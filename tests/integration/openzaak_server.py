"""Install and run the real Open Zaak 1.21.0 (../shared/vendor/) on loopback, for the integration suite.

Recipe: ../shared/docs/test-infrastructure.md, section "Open Zaak". The installed tree and its venv are
cached outside the repository, keyed by the tarball's sha256 (``/var/tmp/loket-openzaak-<sha12>``,
``$LOKET_OPENZAAK_CACHE`` for another parent folder). It is built in a temporary folder beside it and
renamed into place when complete, so an interrupted install is never reused half-made. The install also
migrates a template PostgreSQL cluster; every start copies that template into a throwaway folder, so a
warm start needs no migrate.

By hand (as root, or with the apt packages already installed)::

    .venv/bin/python -m tests.integration.openzaak_server install   # prints the cache folder
    .venv/bin/python -m tests.integration.openzaak_server start     # runs until Ctrl-C, prints URLs and secret
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
TARBALL = SHARED / "vendor" / "open-zaak-1.21.0.tar.gz"
PGBIN = Path("/usr/lib/postgresql/15/bin")
APT_PACKAGES = [
    "build-essential",
    "pkg-config",
    "libpq-dev",
    "libpcre2-dev",
    "gdal-bin",
    "libgdal-dev",
    "libproj-dev",
    "binutils",
    "gettext",
    "postgresql-15-postgis-3",
    "mime-support",
]
CLIENT_ID = "loket-adapter"
SECRET = "an-open-zaak-test-secret-of-thirty-two-bytes"
DB_USER = "openzaak"
DB_NAME = "openzaak"
# Bestandsdelen of this size: a document of a few tens of KB goes up in several parts.
CHUNK_SIZE = 4096

SETTINGS_MODULE = "openzaak.conf.loket_test"
SETTINGS_SOURCE = '''"""Open Zaak settings for the loket-adapter integration suite (written by tests/integration)."""
from .production import *  # noqa: F401,F403

NOTIFICATIONS_DISABLED = True
CACHES = {
    name: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": name}
    for name in CACHES  # noqa: F405
}
# no collectstatic: the API needs no static files
STATICFILES_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"
STORAGES = {**globals().get("STORAGES", {}), "staticfiles": {"BACKEND": STATICFILES_STORAGE}}
'''

CREDENTIALS_SCRIPT = f"""
from vng_api_common.models import JWTSecret
from vng_api_common.authorizations.models import Applicatie
JWTSecret.objects.update_or_create(identifier={CLIENT_ID!r}, defaults={{"secret": {SECRET!r}}})
if not Applicatie.objects.filter(client_ids__contains=[{CLIENT_ID!r}]).exists():
    Applicatie.objects.create(client_ids=[{CLIENT_ID!r}], label="loket-adapter", heeft_alle_autorisaties=True)
print("credentials ok")
"""


def log(msg: str) -> None:
    print(f"[openzaak] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir(tarball: Path = TARBALL) -> Path:
    parent = Path(os.environ.get("LOKET_OPENZAAK_CACHE", "/var/tmp"))
    return parent / f"loket-openzaak-{sha256_of(tarball)[:12]}"


def missing_apt_packages() -> list[str]:
    missing = []
    for pkg in APT_PACKAGES:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
        ).stdout
        if "install ok installed" not in out:
            missing.append(pkg)
    return missing


def is_root() -> bool:
    return os.geteuid() == 0


def skip_reason(tarball: Path = TARBALL) -> str | None:
    """Why the suite cannot run here, or None."""
    if os.environ.get("LOKET_SKIP_OPENZAAK"):
        return "LOKET_SKIP_OPENZAAK is set (.ci/run runs this suite in its SQLite pass only)"
    if not SHARED.is_dir():
        return f"{SHARED} is absent (the vendored Open Zaak lives in ../shared/vendor/)"
    if not tarball.is_file():
        return f"{tarball} is absent"
    if not PGBIN.joinpath("initdb").exists() and not is_root():
        return "PostgreSQL 15 is not installed and we are not root (apt-get install postgresql)"
    if not is_root() and (missing := missing_apt_packages()):
        return f"not root and apt packages missing: {' '.join(missing)}"
    if not is_root() or shutil.which("runuser") is None:
        return "not root: the throwaway PostgreSQL runs as the postgres user (runuser needs root)"
    return None


def ensure_apt_packages() -> None:
    missing = missing_apt_packages()
    if not missing:
        return
    if not is_root():
        raise RuntimeError(f"apt packages missing and not root: {' '.join(missing)}")
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _run(cmd: list[str], **kw: object) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        )


@contextmanager
def _install_lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(tarball: Path = TARBALL) -> Path:
    """The installed tree, venv and migrated template cluster, built when not cached yet."""
    target = cache_dir(tarball)
    if (target / "READY").exists():
        return target
    with _install_lock(target):
        if (target / "READY").exists():
            return target
        for stale in target.parent.glob(f"{target.name}.partial-*"):  # left by an install that was killed
            shutil.rmtree(stale, ignore_errors=True)
        t0 = time.monotonic()
        ensure_apt_packages()
        t_apt = time.monotonic() - t0
        work = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
        os.chmod(work, 0o755)
        try:
            log(f"unpacking {tarball.name} into {work}")
            with tarfile.open(tarball) as tar:
                tar.extractall(work, filter="data")
            (work / "open-zaak-1.21.0").rename(work / "tree")
            (work / "tree" / "src" / "openzaak" / "conf" / "loket_test.py").write_text(SETTINGS_SOURCE)
            log("venv + pip install (builds psycopg2 and uwsgi)")
            _run(
                [sys.executable if sys.version_info[:2] == (3, 11) else "python3.11", "-m", "venv", str(work / "venv")]
            )
            pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            _run([*pip, "-U", "pip", "wheel", "setuptools<70"])
            _run([*pip, "-r", str(work / "tree" / "requirements" / "production.txt")])
            t_pip = time.monotonic() - t0 - t_apt
            log("template database: initdb + migrate")
            pg = Postgres(work / "pgtemplate")
            pg.init()
            pg.start()
            try:
                _migrate(work, pg)
                _manage(work, _env(work, pg), "shell", stdin=CREDENTIALS_SCRIPT)  # in the template: no start pays
                (work / "CREDENTIALS").write_text(CLIENT_ID)
            finally:
                pg.stop()
            t_all = time.monotonic() - t0
            timings = {"apt_s": round(t_apt, 1), "pip_s": round(t_pip, 1), "total_s": round(t_all, 1)}
            (work / "install-times.json").write_text(json.dumps(timings))
            (work / "READY").write_text(sha256_of(tarball))
            os.rename(work, target)  # atomic: a half-made install never carries the final name
            log(f"installed in {t_all:.0f} s ({timings}) → {target}")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return target


# -- PostgreSQL (throwaway cluster with PostGIS) ----------------------------------------------------------


@dataclass
class Postgres:
    base: Path
    port: int = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    def _pg(self, *args: str) -> None:
        _run(["runuser", "-u", "postgres", "--", *args])

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base, "postgres", "postgres")
        self._pg(
            str(PGBIN / "initdb"), "-D", str(self.data), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"
        )

    def start(self) -> None:
        self.port = self.port or free_port()
        self._pg(
            str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"), "-w",
            "-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PGBIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
        )

    def psql(self, sql: str, db: str = "postgres") -> None:
        self._pg(
            str(PGBIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            DB_USER,
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        )


def _env(tree_root: Path, pg: Postgres, port: int = 0, media: Path | None = None) -> dict[str, str]:
    media = media or tree_root / "media"
    domain = f"127.0.0.1:{port}" if port else "127.0.0.1"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VIRTUAL_ENV", "PYTHON"))},
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONPATH": str(tree_root / "tree" / "src"),
        "SECRET_KEY": "loket-adapter-integration-tests-not-a-secret",
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(pg.port),
        "DB_NAME": DB_NAME,
        "DB_USER": DB_USER,
        "DB_PASSWORD": "",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_DOMAIN": domain,
        "OPENZAAK_DOMAIN": domain,
        "IS_HTTPS": "no",
        "DISABLE_2FA": "true",
        "CMIS_ENABLED": "false",
        "NOTIFICATIONS_DISABLED": "true",
        "MEDIA_ROOT": str(media / "public"),
        "PRIVATE_MEDIA_ROOT": str(media / "private"),
        "SENDFILE_BACKEND": "django_sendfile.backends.simple",
        "DOCUMENTEN_UPLOAD_CHUNK_SIZE": str(CHUNK_SIZE),
        "LOG_STDOUT": "true",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }


def _manage(tree_root: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    res = subprocess.run(
        [str(tree_root / "venv" / "bin" / "python"), str(tree_root / "tree" / "src" / "manage.py"), *args],
        cwd=tree_root / "tree" / "src",
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res.stdout


def _migrate(tree_root: Path, pg: Postgres) -> None:
    pg.psql(f"CREATE DATABASE {DB_NAME}")
    pg.psql("CREATE EXTENSION postgis; CREATE EXTENSION pg_trgm;", db=DB_NAME)
    _manage(tree_root, _env(tree_root, pg), "migrate", "--no-input")


# -- the running server -----------------------------------------------------------------------------------


@dataclass
class OpenZaak:
    """A running Open Zaak: its own PostgreSQL (copied from the template) and uwsgi on free ports."""

    root: Path
    work: Path
    port: int = 0
    pg: Postgres = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pg = Postgres(self.work / "pg")
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, component: str) -> str:
        return f"{self.url}/{component}/api/v1"

    @property
    def env(self) -> dict[str, str]:
        return _env(self.root, self.pg, self.port, self.work / "media")

    def start(self) -> None:
        t0 = time.monotonic()
        self.work.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work, 0o755)  # the postgres user must reach its cluster inside
        self.pg.base.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.root / "pgtemplate" / "data", self.pg.data, symlinks=True)
        subprocess.run(["chown", "-R", "postgres:postgres", str(self.pg.base)], check=True)
        self.pg.start()
        self.timings["postgres_s"] = round(time.monotonic() - t0, 2)
        t1 = time.monotonic()
        if not (self.root / "CREDENTIALS").exists():  # an install made before the template held them
            out = _manage(self.root, self.env, "shell", stdin=CREDENTIALS_SCRIPT)
            assert "credentials ok" in out, out
        self.timings["credentials_s"] = round(time.monotonic() - t1, 2)
        t2 = time.monotonic()
        self.start_http()
        self.timings["uwsgi_s"] = round(time.monotonic() - t2, 2)
        self.timings["start_s"] = round(time.monotonic() - t0, 2)

    def start_http(self) -> None:
        """uwsgi only (the database keeps running): also used to bring Open Zaak back after an outage."""
        logf = (self.work / "uwsgi.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(self.root / "venv" / "bin" / "uwsgi"),
                "--http",
                f"127.0.0.1:{self.port}",
                "--module",
                "openzaak.wsgi:application",
                "--home",
                str(self.root / "venv"),
                "--chdir",
                str(self.root / "tree" / "src"),
                "--master",
                "--processes",
                "2",
                "--threads",
                "2",
                "--die-on-term",
                "--need-app",
                "--lazy-apps",
                "--http-keepalive",
                "--http-auto-chunked",  # httpx keeps connections open
                "--buffer-size",
                "65535",
                "--http-timeout",
                "120",
                "--harakiri",
                "120",
            ],
            cwd=self.root / "tree" / "src",
            env=self.env,
            stdout=logf,
            stderr=logf,
            start_new_session=True,  # its own process group: an outage kills master and workers at once
        )
        import httpx  # here, so that `install` runs on a bare python3.11 (CI installs before the venv exists)

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uwsgi exited:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.api('catalogi')}/catalogussen", headers=self.headers(), timeout=5)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Open Zaak did not answer in 90 s:\n{self.log_tail()}")

    def kill_http(self) -> None:
        """A hard outage: SIGKILL to uwsgi's whole process group (requests in flight are cut off)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop_http(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop(self) -> None:
        self.stop_http()
        self.pg.stop()

    def log_tail(self) -> str:
        p = self.work / "uwsgi.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def shell(self, script: str) -> str:
        """Run Python inside Open Zaak (``manage.py shell``), e.g. to seed the catalogus through the ORM."""
        return _manage(self.root, self.env, "shell", stdin=script)

    def token(self) -> str:
        import jwt

        now = int(time.time())
        return jwt.encode(
            {"iss": CLIENT_ID, "client_id": CLIENT_ID, "iat": now, "user_id": CLIENT_ID}, SECRET, algorithm="HS256"
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", "Accept-Crs": "EPSG:4326", "Content-Crs": "EPSG:4326"}


def start(tarball: Path = TARBALL, work: Path | None = None) -> OpenZaak:
    root = install(tarball)
    oz = OpenZaak(root, work or Path(tempfile.mkdtemp(prefix="loket-openzaak-run.")))
    oz.start()
    return oz


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.integration.openzaak_server", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("command", choices=["install", "start"])
    ap.add_argument("--seed", action="store_true", help="with start: seed the test catalogus and print its URL")
    args = ap.parse_args(argv)
    if (reason := skip_reason()) and not (args.command == "install" and is_root()):
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    root = install()
    cold = (root / "install-times.json").read_text()
    print(f"installed: {root} ({time.monotonic() - t0:.1f} s; cold install times: {cold})")
    if args.command == "install":
        return 0
    # Ctrl-C stops it even when it was started from a background job, which inherits SIGINT ignored (a
    # non-interactive shell's `cmd &`; so did a test suite started that way, and its test's SIGINT was lost)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    oz = start()
    try:  # from here on an interrupt, wherever it lands (the seed, the last print), stops what was started
        pg = f"PostgreSQL on 127.0.0.1:{oz.pg.port}, data in {oz.work}"
        print(f"started in {oz.timings['start_s']} s: {oz.url} ({pg})")
        print(f"client_id {CLIENT_ID!r}, secret {SECRET!r}; token: {oz.token()}")
        if args.seed:
            from tests.integration.seed import seed

            print(f"catalogus: {seed(oz)['catalogus']}", flush=True)
        while oz.proc and oz.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        log("interrupted: stopping")
    finally:
        t = time.monotonic()
        oz.stop_http()
        log(f"uwsgi stopped in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        oz.pg.stop()
        log(f"PostgreSQL stopped in {time.monotonic() - t:.1f} s")
        shutil.rmtree(oz.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
