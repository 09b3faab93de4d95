"""One access-log line per HTTP request: method, path, status, duration, bytes sent, caller address and OIN.

Never a body, a query string or a header value other than the correlation id: the line is for an operator
following a request, and a SOAP body or a query may carry personal data. The line carries the
correlation id the endpoint answered with (``X-Correlation-ID``), so it joins the message's own lines;
a request the endpoints did not answer with one (health checks, ``/xsd``) gets a fresh id.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.logs import correlation, get_logger
from adapter.web.trust import CALLER_OIN, PEER

log = get_logger("adapter.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        seen: dict[str, Any] = {"status": None, "bytes": 0, "cid": None}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    if key.lower() == b"x-correlation-id":
                        seen["cid"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            peer = scope.get(PEER)
            client = peer.address if peer is not None else (scope.get("client") or (None,))[0]
            cid = seen["cid"] if isinstance(seen["cid"], str) and seen["cid"].isalnum() else None
            with correlation(cid, channel="http"):
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=seen["status"] or 500,  # no answer started: the server answers 500
                    duration_ms=round((time.perf_counter() - t0) * 1000, 1),
                    bytes_sent=seen["bytes"],
                    client=client,
                    oin=scope.get(CALLER_OIN),
                )
