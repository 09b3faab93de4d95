"""Checkpoints of a live flow, for the ketensimulatie's record / rerun / compare (docs/ketensimulatie.md).

Off unless a recorder is installed (``loket-adapter record``, ``simulate --record``, and a rerun itself). Then
every delivery run notes its checkpoints (the canonical Verzoek, the mapped Opdracht) and every outbound HTTP
call its clients make, with the answer, under the message the run delivers (a context variable set by the
delivery worker); a message refused at the door is a flow that ends there (``rejected``). When nothing is
installed each hook is one global read: production pays nothing.

This module knows no file format and no store: the recorder decides what to keep (``adapter.simulation.recorded``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time
from pathlib import PurePath
from typing import IO, Any, Protocol

import httpx

from adapter.logs import get_logger

log = get_logger("adapter.recording")


class Recorder(Protocol):
    def checkpoint(self, message_id: int, name: str, value: Any) -> None: ...

    def call(self, message_id: int, call: dict[str, Any]) -> None:
        """A call and its answer, whole; ``call["raw"]`` (when there) is a readable file of a binary answer's
        bytes, open only during this call."""

    def finished(self, message_id: int) -> None: ...


_recorder: Recorder | None = None
_transport: httpx.BaseTransport | None = None
_message: ContextVar[int | None] = ContextVar("recording_message", default=None)


@contextmanager
def installed(recorder: Recorder) -> Iterator[Recorder]:
    """Record every delivery run in this process while the block runs (one recorder at a time)."""
    global _recorder
    if _recorder is not None:
        raise RuntimeError("a recorder is installed already")
    _recorder = recorder
    try:
        yield recorder
    finally:
        _recorder = None


@contextmanager
def delivering(message_id: int) -> Iterator[None]:
    """One delivery run of ``message_id``: its checkpoints and calls belong to that message; the recorder
    hears when the run has ended (its outcome committed)."""
    token = _message.set(message_id)
    try:
        yield
    finally:
        _message.reset(token)
        _finished(message_id)


def rejected(message_id: int | None) -> None:
    """A message refused at the door (a Fo03, a STAM 400) is logged as ``message_id``: its flow ends there, with
    the message and the answer; a rerun proves it is refused the same way."""
    if message_id is not None:
        _finished(message_id)


def _finished(message_id: int) -> None:
    recorder = _recorder
    if recorder is not None:
        try:
            recorder.finished(message_id)
        except Exception:  # after the outcome is committed: a recorder's failure is its own, never the run's
            log.warning("flow not recorded", message_id=message_id, exc_info=True)


@contextmanager
def replaying(transport: httpx.BaseTransport) -> Iterator[None]:
    """Clients made while the block runs send every call to ``transport`` (a rerun's recorded far side)
    instead of the network: the adapter sees the recorded URLs and answers exactly."""
    global _transport
    if _transport is not None:
        raise RuntimeError("a rerun replays already")
    _transport = transport
    try:
        yield
    finally:
        _transport = None


def transport() -> httpx.BaseTransport | None:
    """The transport a client of a far system is made with: None (the network) unless a rerun replays."""
    return _transport


def current_message() -> int | None:
    """The message the running delivery run delivers (None outside one)."""
    return _message.get()


def checkpoint(name: str, value: Any) -> None:
    """Note ``value`` (a model object, made plain JSON) as checkpoint ``name`` of the running delivery."""
    recorder, mid = _recorder, _message.get()
    if recorder is not None and mid is not None:
        try:
            recorder.checkpoint(mid, name, plain(value))
        except Exception:  # recording must never break a delivery
            log.warning("checkpoint not recorded", checkpoint=name, exc_info=True)


def _on_response(response: httpx.Response) -> None:
    """The answer's body is recorded as the client reads it (``_Tee``), never read here: a streamed download
    stays streamed, a broken one fails in the client as it would without a recorder (and is resumed there)."""
    recorder, mid = _recorder, _message.get()
    if recorder is None or mid is None:
        return
    try:
        call = {
            "method": response.request.method,
            "url": str(response.request.url),
            "request": _sent(response.request),
            "status": response.status_code,
            "content_type": response.headers.get("content-type", ""),
            "response": None,
        }
        if hasattr(response, "_content"):  # read already (an in-process transport answers whole): as it is
            _answered(recorder, mid, call, io.BytesIO(response.content), None)
        else:
            encoding = response.headers.get("content-encoding")
            response.stream = _Tee(response.stream, lambda tee: _answered(recorder, mid, call, tee.spool, encoding))
    except Exception:  # recording must never break a delivery: the call stays unrecorded, the rerun says so
        log.warning("call not recorded", exc_info=True)


def _sent(request: httpx.Request) -> Any:
    try:
        content = request.content
    except httpx.RequestNotRead:  # streamed: a bestandsdeel's multipart upload of bytes, which renders again
        content = b"".join(request.stream) if isinstance(request.stream, Iterable) else b""
    return body_of(request.headers.get("content-type", ""), content)


class _Tee(httpx.SyncByteStream):
    """The answer's bytes as the client reads them, kept in a spool (memory up to 1 MiB, then a temporary file);
    when the client closes the answer, the recorder gets the call whole (a cut-off download: what came)."""

    def __init__(self, inner: Any, done: Callable[[_Tee], None]) -> None:
        self.inner = inner
        self.done = done
        self.spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 (closed in close())
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.spool.write(chunk)
            yield chunk

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if not self._closed:
                self._closed = True
                try:
                    self.done(self)
                except Exception:
                    log.warning("call not recorded", exc_info=True)
                finally:
                    self.spool.close()


def _answered(recorder: Recorder, mid: int, call: dict[str, Any], spool: IO[bytes], encoding: str | None) -> None:
    """The call complete with its answer (``spool``: its bytes as they came, ``encoding`` their compression)."""
    spool.seek(0)
    content_type = call["content_type"]
    if "json" in content_type or content_type.startswith(("text/", "application/xml")) or encoding:
        raw = spool.read()
        if encoding:  # the bytes on the wire are compressed; what the client read, and a rerun answers, is not
            raw = httpx.Response(200, headers={"content-encoding": encoding}, content=raw).read()
        call["response"] = body_of(content_type, raw)
        if isinstance(call["response"], dict) and "sha256" in call["response"] and "json" not in content_type:
            call["raw"] = io.BytesIO(raw)
    else:  # binary (a bijlage's bytes): by size and sha256, the bytes for a rerun to answer with
        digest, size = hashlib.sha256(), 0
        for block in iter(lambda: spool.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
        call["response"] = {"bytes": size, "sha256": digest.hexdigest()} if size else None
        if size:
            spool.seek(0)
            call["raw"] = spool
    recorder.call(mid, call)


#: httpx event hooks for every client that talks to a far system: a no-op unless a recorder is installed
EVENT_HOOKS: dict[str, list[Any]] = {"request": [], "response": [_on_response]}


_BOUNDARY = re.compile(r"boundary=([^;\s]+)")


def body_of(content_type: str, content: bytes) -> Any:
    """A body as comparable data: JSON as JSON, XML and other text as text, binary (and multipart, whose
    boundary is random) by size and sha256."""
    if not content:
        return None
    if "json" in content_type:
        try:
            return json.loads(content)
        except ValueError:
            pass
    if content_type.startswith("multipart/"):
        m = _BOUNDARY.search(content_type)
        if m:
            content = content.replace(m.group(1).strip('"').encode(), b"BOUNDARY")
        return {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def plain(value: Any) -> Any:
    """Model objects (dataclasses, enums, dates, bytes) as plain JSON data; bytes by size and sha256."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, bytes | bytearray):
        return {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.name  # a file in our own store: where it lies differs per installation, its name does not
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
