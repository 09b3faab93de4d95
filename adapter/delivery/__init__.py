"""Delivery: from a stored message to the target, with checkpoints, backoff, dead and needs-attention.

``sources`` turns a stored message into the canonical ``Verzoek`` (fetching STAM verzoeken from the
werkmap), ``worker`` claims due deliveries and runs them, ``preview`` shows what a delivery would do.
"""
