"""A fake ZGW zaaksysteem (Catalogi 1.3.1, Zaken 1.5.1, Documenten 1.5.0) that checks all traffic
against the official OpenAPI files; see `FakeZgw`."""

from .app import FakeZgw, RecordedRequest
from .auth import make_token
from .catalogi import DEFAULT_SEED
from .server import serve_in_thread

__all__ = ["DEFAULT_SEED", "FakeZgw", "RecordedRequest", "make_token", "serve_in_thread"]
