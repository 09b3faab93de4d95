"""Baseline for bench/inbound.py: a spyne service on the same stack (uvicorn + a2wsgi + spyne, same
thread count) that accepts the same message and does nothing with it."""

from __future__ import annotations

import logging
import sys

import uvicorn
from a2wsgi import WSGIMiddleware
from lxml import etree
from spyne import AnyXml, Application, ServiceBase, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

LVO = "http://www.egem.nl/StUF/sector/lvo/0312"
STUF = "http://www.egem.nl/StUF/StUF0301"


class Bare(ServiceBase):
    @rpc(
        AnyXml,
        _body_style="bare",
        _in_message_name="omvDi01AanbiedenAanvraag",
        _returns=AnyXml,
        _out_message_name=f"{{{STUF}}}Bv03Bericht",
    )
    def omvDi01AanbiedenAanvraag(ctx, body):
        return etree.Element(f"{{{STUF}}}stuurgegevens")


def main() -> None:
    port, threads = int(sys.argv[1]), int(sys.argv[2])
    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    app = Application([Bare], tns=LVO, in_protocol=Soap11(), out_protocol=Soap11())
    asgi = WSGIMiddleware(WsgiApplication(app, max_content_length=50 * 1024 * 1024), workers=threads)
    uvicorn.run(asgi, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
