"""Run an ASGI app on a real loopback port in a background thread (HTTP or HTTPS), for tests and the
ketensimulatie: every fake of the far side is served through here."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
) -> tuple[str, Callable[[], None]]:
    """Start uvicorn on 127.0.0.1 at a free port; return (base_url, stop) once it accepts connections.
    With ``certfile``/``keyfile`` it speaks HTTPS; with ``client_ca`` it also requires a client certificate
    signed by that CA (the werkmap's PKIoverheid mTLS).

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
    for _attempt in range(3):  # another process may grab the free port before uvicorn binds it
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            **tls,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"fake-server-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.started:
            break
        server.should_exit = True
        thread.join(timeout)
    else:
        raise RuntimeError("uvicorn did not start on a free loopback port")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout)

    return f"{'https' if certfile else 'http'}://127.0.0.1:{port}", stop


@contextmanager
def serving(app: Any, **kwargs: Any) -> Iterator[str]:
    """``serve_in_thread`` as a context manager yielding the base URL."""
    url, stop = serve_in_thread(app, **kwargs)
    try:
        yield url
    finally:
        stop()
