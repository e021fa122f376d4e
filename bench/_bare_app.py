"""The bare FastAPI baseline of figure 2 (not a benchmark itself).

    python bench/_bare_app.py --port P [--get-bytes N] [--put-bytes N] [--async]

The ledger's two routes, ``PUT`` and ``GET /v1/tenants/{tenant}/secrets/{key:path}``,
with nothing behind them: the PUT body is parsed into the same kind of model as the
ledger's (``{"value": any, "metadata": {str: str} | null}``, strict, no extra fields),
and each route answers a constant JSON body of the given size (the size of the
ledger's answer, measured by ``bench/http.py``). Handlers are plain ``def`` as the
ledger's are (FastAPI runs them in its thread pool); ``--async`` makes them
``async def`` (run on the event loop), a second, faster floor.

Served exactly as ``secrets-ledger serve`` serves the ledger (``api/server.py``): one
uvicorn process, same host, ``timeout_graceful_shutdown=30``, ``access_log=False``,
``log_level="info"``, ``server_header=False``, uvicorn's default loop and HTTP parser
(uvloop and httptools when installed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict


class SecretPut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    value: Any
    metadata: dict[str, str] | None = None


def constant_body(size: int, **fields: Any) -> bytes:
    """A JSON object of exactly ``size`` bytes (padded by a ``pad`` string field)."""
    base = json.dumps({**fields, "pad": ""}, separators=(",", ":")).encode()
    return json.dumps({**fields, "pad": "p" * max(0, size - len(base))},
                      separators=(",", ":")).encode()


def create_app(get_bytes: int, put_bytes: int, use_async: bool) -> FastAPI:
    app = FastAPI(title="bare")
    got = constant_body(get_bytes, key="bench/read", version=1)
    put = constant_body(put_bytes, key="bench/write", version=1)
    route = "/v1/tenants/{tenant}/secrets/{key:path}"

    if use_async:
        @app.put(route)
        async def put_secret_async(tenant: str, key: str, body: SecretPut) -> Response:
            return Response(put, media_type="application/json", headers={"ETag": '"1"'})

        @app.get(route)
        async def get_secret_async(tenant: str, key: str) -> Response:
            return Response(got, media_type="application/json", headers={"ETag": '"1"'})
    else:
        @app.put(route)
        def put_secret(tenant: str, key: str, body: SecretPut) -> Response:
            return Response(put, media_type="application/json", headers={"ETag": '"1"'})

        @app.get(route)
        def get_secret(tenant: str, key: str) -> Response:
            return Response(got, media_type="application/json", headers={"ETag": '"1"'})

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--get-bytes", type=int, default=450)
    parser.add_argument("--put-bytes", type=int, default=80)
    parser.add_argument("--async", dest="use_async", action="store_true")
    args = parser.parse_args()
    config = uvicorn.Config(create_app(args.get_bytes, args.put_bytes, args.use_async),
                            host=args.host, port=args.port, timeout_graceful_shutdown=30,
                            access_log=False, log_level="info", server_header=False)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # as api/server.py does
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
