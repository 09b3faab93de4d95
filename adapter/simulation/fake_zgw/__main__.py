"""Run the fake ZGW zaaksysteem on a port: ``python -m adapter.simulation.fake_zgw --specs DIR``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from .app import SPECS_DIR, FakeZgw
from .catalogi import DEFAULT_SEED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--specs", type=Path, default=SPECS_DIR, help="folder with the official ZGW OpenAPI files (default: shipped)"
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--secret", default="test-secret")
    ap.add_argument("--client-id", default="loket-adapter")
    ap.add_argument("--catalogus-uuid", default="00000000-0000-0000-0000-000000000001", help="as config.example.toml")
    ap.add_argument("--no-validate", action="store_true", help="skip OpenAPI checks (benchmarks only)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    seed = {**DEFAULT_SEED, "catalogus": {**DEFAULT_SEED["catalogus"], "uuid": args.catalogus_uuid}}
    fake = FakeZgw(
        args.specs, client_id=args.client_id, secret=args.secret, catalogus_seed=seed, validate=not args.no_validate
    )
    fake.base_url = f"http://{args.host}:{args.port}"
    print(f"catalogus {fake.catalogus_url('catalogussen')}", flush=True)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
