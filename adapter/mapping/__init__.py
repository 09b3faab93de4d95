"""Mappings: route a ``Verzoek`` to a target and decide zaaktypen, profiles and document types."""
