"""ZGW target: Catalogi lookups, Zaken and Documenten calls (VNG ZGW APIs 1.x)."""

from adapter.targets.registry import Plugin
from adapter.targets.zgw.options import ZgwOptions
from adapter.targets.zgw.plugin import ZgwTarget

PLUGIN = Plugin(kind="zgw", options=ZgwOptions, build=ZgwTarget)
