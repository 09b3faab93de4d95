"""Targets: one plugin per kind of zaaksysteem (``zgw``, ``stuf_zkn``), each with options, client, check()."""
