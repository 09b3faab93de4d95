"""The intake (``adapter.inbound.intake``) as an ASGI wrapper, driven directly: what the endpoint behind it
receives, what a refused caller gets back, and how many requests it admits. ``test_intake.py`` proves the
same against a real ``serve`` with slow sockets; these pin the details the socket tests cannot see (the
exact bytes handed over, the bound on what is read, the log line of each refusal)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapter.inbound import intake as intake_module
from adapter.inbound.intake import Intake
from tests.logrecord import record_log

Message = dict[str, Any]


class Endpoint:
    """The app behind the intake: records what it was handed, reads the body through ``receive``."""

    def __init__(self, *, second_receive: bool = False, hold: asyncio.Event | None = None) -> None:
        self.calls: list[tuple[dict[str, Any], bytes, Message | None]] = []
        self.second_receive = second_receive
        self.hold = hold

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        body = b""
        if scope.get("method") == "POST":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        after = await receive() if self.second_receive else None  # what a disconnect listener would see
        self.calls.append((scope, body, after))
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def incoming(*messages: Message, then: Message | None = None) -> tuple[Callable[[], Awaitable[Message]], list[int]]:
    """A ``receive`` that hands out ``messages`` and then ``then`` (default: the client's disconnect) forever;
    the list counts the calls."""
    queue = list(messages)
    count = [0]

    async def receive() -> Message:
        count[0] += 1
        if queue:
            return queue.pop(0)
        await asyncio.sleep(0)
        return then or {"type": "http.disconnect"}

    return receive, count


def endless(chunk: bytes, cap: int = 1000) -> Callable[[], Awaitable[Message]]:
    """A client that keeps sending ``chunk`` with ``more_body`` for as long as it is asked (up to ``cap``
    pieces, so that an intake that does not stop ends the test instead of the machine's memory)."""
    sent = [0]

    async def receive() -> Message:
        sent[0] += 1
        return {"type": "http.request", "body": chunk, "more_body": sent[0] < cap}

    return receive


def run(app: Intake, scope: dict[str, Any], receive: Callable[[], Awaitable[Message]]) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def post(path: str = "/soap/stuf-lvo") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": []}


def make(endpoint: Endpoint, **limits: Any) -> Intake:
    options: dict[str, Any] = {"endpoint": "/soap/stuf-lvo", "max_bytes": 100, "body_timeout": 5.0, "max_concurrent": 4}
    return Intake(endpoint, **(options | limits))


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    return record_log(monkeypatch, intake_module)


def test_the_endpoint_gets_the_whole_body_once_then_the_clients_own_messages() -> None:
    endpoint = Endpoint(second_receive=True)
    receive, _ = incoming(
        {"type": "http.request", "body": b"<a>", "more_body": True},
        {"type": "http.request", "more_body": True},  # ASGI: "body" may be left out (b"")
        {"type": "http.request", "body": b"</a>"},  # and "more_body" (False)
    )
    sent = run(make(endpoint), post(), receive)
    [(_, body, after)] = endpoint.calls
    assert body == b"<a></a>"
    assert after == {"type": "http.disconnect"}  # after the body: the client's own receive, not the body again
    assert sent[0]["status"] == 200


def test_reading_stops_one_byte_past_the_limit_however_the_body_is_cut() -> None:
    """The endpoint refuses a body over ``max_bytes`` by its own rule; the intake reads only enough to know,
    whether the client sends one large piece or an endless stream of small ones."""
    for chunk in (b"x" * 7, b"y" * 250):
        endpoint = Endpoint()
        run(make(endpoint, max_bytes=100), post(), endless(chunk))
        [(_, body, _)] = endpoint.calls
        assert body == (chunk * 101)[:101], len(body)


def test_a_client_gone_before_its_body_is_complete_reaches_no_endpoint() -> None:
    endpoint = Endpoint()
    receive, _ = incoming({"type": "http.request", "body": b"<half", "more_body": True}, {"type": "http.disconnect"})
    assert run(make(endpoint), post(), receive) == []
    assert endpoint.calls == []


def test_a_body_too_slow_gets_408_closing_the_connection_and_one_warning(logs: list[dict[str, Any]]) -> None:
    async def stalls() -> Message:
        await asyncio.sleep(30)
        raise AssertionError("the intake waited past its deadline")

    endpoint = Endpoint()
    sent = run(make(endpoint, body_timeout=0.2), post(), stalls)
    assert endpoint.calls == []
    assert sent == [
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        },
        {"type": "http.response.body", "body": b"request body not received within 0.2 s\n"},
    ]
    assert logs == [
        {"level": "warning", "event": "request refused: body too slow", "endpoint": "/soap/stuf-lvo", "seconds": 0.2}
    ]


def test_one_request_over_the_limit_gets_503_and_every_slot_comes_back(logs: list[dict[str, Any]]) -> None:
    """``max_concurrent`` requests are admitted at a time: one more is refused at once with Retry-After (the
    connection stays open), and a finished request frees its slot — also when the endpoint failed."""

    async def scenario() -> list[list[Message]]:
        hold = asyncio.Event()
        endpoint = Endpoint(hold=hold)
        app = make(endpoint, max_concurrent=2)
        answers: list[list[Message]] = []

        async def request() -> list[Message]:
            sent: list[Message] = []

            async def send(message: Message) -> None:
                sent.append(message)

            receive, _ = incoming({"type": "http.request", "body": b"<a/>"})
            await app(post(), receive, send)
            return sent

        held = [asyncio.create_task(request()) for _ in range(2)]
        while len(endpoint.calls) < 2:
            await asyncio.sleep(0)
        answers.append(await request())  # the third, while two are held
        hold.set()
        answers += await asyncio.gather(*held)
        for _ in range(3):  # one at a time, after those: each admitted
            answers.append(await request())

        async def failing(scope: Any, receive: Any, send: Any) -> None:
            raise RuntimeError("endpoint failed")

        app.app = failing
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await request()
        app.app = endpoint
        hold.clear()
        held = [asyncio.create_task(request()) for _ in range(3)]  # after all that, still two at a time
        while len(endpoint.calls) < 7:
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert len(endpoint.calls) == 7
        hold.set()
        answers += await asyncio.gather(*held)
        return answers

    answers = asyncio.run(scenario())
    statuses = [a[0]["status"] for a in answers]
    assert statuses[:6] == [503, 200, 200, 200, 200, 200]
    assert sorted(statuses[6:]) == [200, 200, 503]
    busy = answers[0]
    assert busy == [
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"5")],
        },
        {"type": "http.response.body", "body": b"2 requests in progress; try again\n"},
    ]
    refused = {"level": "warning", "event": "request refused: endpoint busy", "endpoint": "/soap/stuf-lvo", "limit": 2}
    assert logs == [refused, refused]


def test_a_get_passes_straight_through_even_when_the_endpoint_is_busy() -> None:
    """The WSDL (``GET /soap/stuf-lvo?wsdl``) is not a message: no body is read, no slot is taken, and the
    endpoint gets the client's own ``receive``."""
    endpoint = Endpoint(second_receive=True)
    app = make(endpoint, max_concurrent=1)
    app.active = 1  # every slot taken by a slow POST
    receive, count = incoming(then={"type": "http.disconnect"})
    sent = run(app, {"type": "http", "method": "GET", "path": "/soap/stuf-lvo", "headers": []}, receive)
    assert sent[0]["status"] == 200
    [(scope, body, after)] = endpoint.calls
    assert (scope["method"], body, after, count[0]) == ("GET", b"", {"type": "http.disconnect"}, 1)
    assert app.active == 1


def test_scopes_other_than_http_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    intake = Intake(app, endpoint="/x", max_bytes=10, body_timeout=1, max_concurrent=1)
    receive, _ = incoming()
    for scope in ({"type": "lifespan"}, {"type": "websocket", "path": "/x"}):
        run(intake, scope, receive)
    assert seen == ["lifespan", "websocket"]
