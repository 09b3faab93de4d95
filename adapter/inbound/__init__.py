"""Inbound channels: one module per channel (parse, validate, store, answer)."""
