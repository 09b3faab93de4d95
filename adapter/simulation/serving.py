"""Run an ASGI app on a real loopback port in a background thread (HTTP or HTTPS), for tests and the
ketensimulatie: every fake of the far side is served through here."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_thread(
    app: Any,
    *,
    timeout: float = 10.0,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    client_ca: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> tuple[str, Callable[[], None]]:
    """Start uvicorn on 127.0.0.1 at a free port; return (base_url, stop) once it accepts connections.
    With ``certfile``/``keyfile`` it speaks HTTPS; with ``client_ca`` it also requires a client certificate
    signed by that CA (the werkmap's PKIoverheid mTLS). ``host`` and ``port``: a fixed address instead
    (``simulate --serve-fakes --port-base``, whose URLs a tester writes down); taken, it fails at once.

    uvicorn binds host/port itself: handing it a pre-bound socket cost ~40 ms per request (delayed ACKs).
    """
    tls: dict[str, Any] = {}
    if certfile:
        tls = {
            "ssl_certfile": str(certfile),
            "ssl_keyfile": str(keyfile),
            "ssl_ca_certs": str(client_ca) if client_ca else None,
            "ssl_cert_reqs": ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
        }
    fixed = port
    for _attempt in range(1 if fixed else 3):  # another process may grab the free port before uvicorn binds it
        port = fixed or free_port()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            **tls,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=_run, args=(server,), name=f"fake-server-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.started:
            break
        server.should_exit = True
        thread.join(timeout)
    else:
        where = f"{host}:{fixed}" if fixed else "a free loopback port"
        raise RuntimeError(f"uvicorn did not start on {where}")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout)

    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if certfile else 'http'}://{shown}:{port}", stop


def _run(server: uvicorn.Server) -> None:
    """uvicorn exits (SystemExit) when it cannot bind: the caller says so, with the address, not the thread."""
    with suppress(SystemExit):
        server.run()


@contextmanager
def serving(app: Any, **kwargs: Any) -> Iterator[str]:
    """``serve_in_thread`` as a context manager yielding the base URL."""
    url, stop = serve_in_thread(app, **kwargs)
    try:
        yield url
    finally:
        stop()
