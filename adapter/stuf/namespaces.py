"""Official namespaces used by the StUF envelope (all public, see ``xsd/README.md``)."""

STUF = "http://www.egem.nl/StUF/StUF0301"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml uses it."""
    return f"{{{ns}}}{local}"
