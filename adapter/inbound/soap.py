"""All spyne code: the SOAP 1.1 service at ``/soap/stuf-lvo`` that carries the StUF-LVO channel.

spyne only transports. Our protocol subclass hands the raw bytes to the channel (hardened parse,
addressing checks), dispatch is on the Body child's qualified name (SOAPAction may be empty), each
operation returns the ``StUF:stuurgegevens`` of the Bv03 so that the Body holds exactly
``StUF:Bv03Bericht`` in the StUF namespace, and every fault, ours or spyne's, leaves as a SOAP Fault
whose detail is a ``StUF:Fo03Bericht`` and which has no ``faultactor`` (StUF binding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lxml import etree
from lxml.builder import E
from spyne import AnyXml, Application, Fault, ServiceBase, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from adapter.inbound.stuf_lvo import Incoming, Rejected, StufLvoChannel
from adapter.logs import correlation, get_logger
from adapter.loket import lvo
from adapter.stuf import berichten
from adapter.stuf.fouten import Foutcode, StufFout
from adapter.stuf.namespaces import STUF, q
from adapter.stuf.stuurgegevens import Stuurgegevens

BV03 = q(STUF, "Bv03Bericht")
#: ASGI scope key holding the OIN of the caller's verified client certificate (``adapter.web.trust``), or
#: None; the channel checks the StUF zender against it.
CALLER_OIN = "adapter.caller_oin"
log = get_logger("adapter.inbound.soap")


def _spyne_fault(rejected: Rejected) -> Fault:
    return Fault(
        faultcode="Client" if rejected.fout.fout.plek == "client" else "Server",
        faultstring=rejected.fout.omschrijving,
        detail=rejected.answer,
    )


class _StufSoap11(Soap11):
    """Soap11 that parses through the channel and renders StUF-conform faults."""

    def __init__(self, channel: StufLvoChannel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel = channel

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        raw = b"".join(c if isinstance(c, bytes) else c.encode("utf-8") for c in ctx.in_string)
        try:
            incoming = self.channel.receive(raw, ctx.udc.correlation_id, ctx.udc.caller_oin)
        except Rejected as rejected:
            raise _spyne_fault(rejected) from None
        ctx.udc.incoming = incoming
        ctx.in_document = (incoming.envelope, {})

    def create_out_string(self, ctx: Any, charset: str | None = None) -> None:
        # Declare StUF with its customary prefix once, at the envelope (spyne would write ns0:).
        if ctx.out_document is not None:
            etree.cleanup_namespaces(ctx.out_document, top_nsmap={"StUF": STUF})
        super().create_out_string(ctx, charset)

    def fault_to_parent(self, ctx: Any, cls: Any, inst: Fault, parent: Any, ns: Any, *a: Any, **kw: Any) -> Any:
        detail = inst.detail
        if not (isinstance(detail, etree._Element) and detail.tag == q(STUF, "Fo03Bericht")):
            # A fault raised by spyne itself (request too long, wrong verb, …): still answer Fo03.
            client = str(inst.faultcode).startswith("Client")
            text = str(inst.faultstring or inst.faultcode)
            if inst.faultcode == "Client.RequestTooLong":
                text = f"Bericht afgewezen: groter dan de limiet van {self.channel.limits.max_bytes} bytes"
            fout = StufFout(Foutcode.STUF055 if client else Foutcode.STUF058, text, str(inst.faultcode))
            incoming: Incoming | None = getattr(ctx.udc, "incoming", None) if ctx.udc else None
            sg = incoming.stuurgegevens if incoming else Stuurgegevens()
            detail = berichten.fo03(sg, fout, self.channel.own_system)
            inst = Fault(faultcode="Client" if client else "Server", faultstring=fout.omschrijving, detail=detail)
            log.warning("message rejected", code=fout.fout.code, omschrijving=fout.omschrijving)
        # Unlike spyne's own, no <faultactor/>: the StUF binding has none. The impl adds <detail>.
        subelts = [E("faultcode", f"{self.soap_env}:{inst.faultcode}"), E("faultstring", inst.faultstring)]
        return self._fault_to_parent_impl(ctx, cls, inst, parent, ns, subelts)


class _Udc:
    """Per-request user data: correlation id and the parsed request."""

    def __init__(self, correlation_id: str, caller_oin: str | None) -> None:
        self.correlation_id = correlation_id
        self.caller_oin = caller_oin
        self.incoming: Incoming | None = None


def _operation(name: str, channel: StufLvoChannel) -> Callable[..., Any]:
    def operation(ctx: Any, _body: Any) -> etree._Element:
        try:
            answer = channel.accept(ctx.udc.incoming)
        except Rejected as rejected:
            raise _spyne_fault(rejected) from None
        # spyne wraps the return value in _out_message_name: return only the inner stuurgegevens.
        return answer.find(q(STUF, "stuurgegevens"))

    operation.__name__ = name  # spyne keys its methods on the function name
    return rpc(
        AnyXml,
        _body_style="bare",
        _in_message_name=name,
        _operation_name=name,
        _returns=AnyXml,
        _out_message_name=BV03,
    )(operation)


def build_wsgi(channel: StufLvoChannel) -> Callable[..., Iterable[bytes]]:
    """The WSGI app for ``POST /soap/stuf-lvo``, one operation per incoming StUF-LVO message."""
    service = type(
        "StufLvoService",
        (ServiceBase,),
        {name: _operation(name, channel) for name in lvo.INCOMING},
    )
    app = Application(
        [service],
        tns=lvo.LVO,
        name="StufLvoService",
        in_protocol=_StufSoap11(channel, validator=None),
        out_protocol=_StufSoap11(channel),
    )
    # Slightly above our own limit so that our check (with its clearer message) applies first.
    wsgi = WsgiApplication(app, max_content_length=channel.limits.max_bytes + 1)

    def with_correlation(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_X_CORRELATION_ID", "")
        cid = given if given.isalnum() and len(given) <= 32 else None
        with correlation(cid, channel="stuf-lvo") as correlation_id:
            environ["adapter.correlation_id"] = correlation_id

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                return start_response(status, [*headers, ("X-Correlation-ID", correlation_id)], exc_info)

            return list(wsgi(environ, start))

    def on_context(ctx: Any) -> None:
        env = ctx.transport.req_env
        ctx.udc = _Udc(env.get("adapter.correlation_id", ""), env.get("asgi.scope", {}).get(CALLER_OIN))

    wsgi.event_manager.add_listener("wsgi_call", on_context)
    return with_correlation
