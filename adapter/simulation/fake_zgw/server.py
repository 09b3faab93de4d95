"""Run an ASGI app on a real loopback port in a background thread, for tests over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_thread(app: Any, *, timeout: float = 10.0) -> tuple[str, Callable[[], None]]:
    """Start uvicorn on 127.0.0.1 at a free port; return (base_url, stop). Returns once it accepts connections.

    uvicorn binds host/port itself: handing it a pre-bound socket cost ~40 ms per request here (delayed ACKs).
    """
    for _attempt in range(3):  # another process may grab the free port before uvicorn binds it
        port = _free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
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

    return f"http://127.0.0.1:{port}", stop
