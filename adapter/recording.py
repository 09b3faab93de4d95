"""Checkpoints of a live flow, for the ketensimulatie's record / rerun / compare (docs/ketensimulatie.md).

Off unless a recorder is installed (``loket-adapter record``, ``simulate --record``, and a rerun itself). Then
every delivery run notes its checkpoints (the canonical Verzoek, the mapped Opdracht) and every outbound HTTP
call its clients make, with the answer, under the message the run delivers (a context variable set by the
delivery worker). When nothing is installed each hook is one global read: production pays nothing.

This module knows no file format and no store: the recorder decides what to keep (``adapter.simulation.recorded``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any, Protocol

import httpx

from adapter.logs import get_logger

log = get_logger("adapter.recording")


class Recorder(Protocol):
    def checkpoint(self, message_id: int, name: str, value: Any) -> None: ...

    def call(self, message_id: int, call: dict[str, Any]) -> None: ...

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
        if _recorder is not None:
            _recorder.finished(message_id)


@contextmanager
def replaying(transport: httpx.BaseTransport) -> Iterator[None]:
    """Clients made while the block runs send every call to ``transport`` (a rerun's recorded far side)
    instead of the network: the adapter sees the recorded URLs and answers exactly."""
    global _transport
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
        recorder.checkpoint(mid, name, plain(value))


def _on_response(response: httpx.Response) -> None:
    recorder, mid = _recorder, _message.get()
    if recorder is None or mid is None:
        return
    try:
        _record(recorder, mid, response)
    except Exception:  # recording must never break a delivery: the call stays unrecorded, the rerun says so
        log.warning("call not recorded", exc_info=True)


def _record(recorder: Recorder, mid: int, response: httpx.Response) -> None:
    response.read()
    request = response.request
    try:
        content = request.content
    except httpx.RequestNotRead:  # streamed: a bestandsdeel's multipart upload of bytes, which renders again
        content = b"".join(request.stream) if isinstance(request.stream, Iterable) else b""
    sent = body_of(request.headers.get("content-type", ""), content)
    answer = body_of(response.headers.get("content-type", ""), response.content)
    call = {
        "method": request.method,
        "url": str(request.url),
        "request": sent,
        "status": response.status_code,
        "content_type": response.headers.get("content-type", ""),
        "response": answer,
    }
    if isinstance(answer, dict) and "sha256" in answer and "json" not in call["content_type"]:
        call["raw"] = response.content  # binary (a bijlage's bytes): a rerun answers with them
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
