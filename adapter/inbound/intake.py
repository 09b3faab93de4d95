"""The front door of every POST endpoint: the whole body is read, within a deadline, before the endpoint and
its worker thread see it, and each endpoint admits a bounded number of requests at a time.

Why: the SOAP endpoint runs in a WSGI thread pool. A WSGI app reads its body from the socket inside its
thread, so twenty clients sending one byte a second held twenty threads and stopped all StUF-LVO intake.
Here the bytes are collected on the event loop, which costs a slow client a few kilobytes and no thread;
a client that does not finish its body within ``body_timeout`` seconds gets 408 and is gone. The limit on
concurrent requests bounds the memory of bodies being read (``max_concurrent * max_bytes``) and the
queue in front of the threads: one more gets 503 with ``Retry-After`` at once, which the loket retries.

The body is read up to ``max_bytes + 1`` bytes only: the endpoint's own size check then refuses it with
the answer its channel prescribes (Fo03 StUF055, problem+json 413), and the rest is never read.
"""

from __future__ import annotations

import asyncio

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("adapter.intake")


class _Gone(Exception):
    """The client disconnected before its body was complete."""


class Intake:
    """ASGI wrapper for one POST endpoint; other methods (GET of a WSDL) pass straight through."""

    def __init__(self, app: ASGIApp, *, endpoint: str, max_bytes: int, body_timeout: float, max_concurrent: int):
        self.app = app
        self.endpoint = endpoint
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.max_concurrent = max_concurrent
        self.active = 0  # only touched on the event loop thread: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_concurrent:
            log.warning("request refused: endpoint busy", endpoint=self.endpoint, limit=self.max_concurrent)
            await _plain(send, 503, f"{self.max_concurrent} requests in progress; try again", retry_after=5)
            return
        self.active += 1
        try:
            try:
                body = await asyncio.wait_for(self._read(receive), self.body_timeout)
            except TimeoutError:
                log.warning("request refused: body too slow", endpoint=self.endpoint, seconds=self.body_timeout)
                await _plain(send, 408, f"request body not received within {self.body_timeout:g} s", close=True)
                return
            except _Gone:
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.active -= 1

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:  # enough to know it is too large; the endpoint says so
                return b"".join(chunks)[: self.max_bytes + 1]
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the buffered body once, then waits for the disconnect as usual."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _plain(send: Send, status: int, text: str, *, retry_after: int | None = None, close: bool = False) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode() + b"\n"})
