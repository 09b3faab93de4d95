"""Kept for imports: the thread server lives in ``adapter.simulation.serving``."""

from adapter.simulation.serving import serve_in_thread

__all__ = ["serve_in_thread"]
