"""Errors shared by every layer: one exception type per kind of failure the operator must tell apart."""

from __future__ import annotations


class AdapterError(Exception):
    """Base of the adapter's own errors; its message is one readable line."""


class ConfigError(AdapterError):
    """The configuration file or the environment is not usable (names file, key and problem)."""


class StoreUnavailable(AdapterError):
    """The database cannot take or give data right now (connection, lock, disk)."""
