"""StUF-ZKN 0310 target (Zaak- en Documentservices 1.1 and 1.2): SOAP calls to a ZDS zaaksysteem."""

from adapter.targets.registry import Plugin
from adapter.targets.stuf_zkn.options import StufZknOptions
from adapter.targets.stuf_zkn.plugin import StufZknTarget

PLUGIN = Plugin(kind="stuf-zkn", options=StufZknOptions, build=StufZknTarget)
