"""``secrets-ledger serve``: the runtime (migrations, projector thread), the bootstrap admin
token, and uvicorn serving the REST app.

uvicorn handles SIGTERM: it stops accepting, lets in-flight requests finish (every
acknowledged write was committed before its response), then the runtime closes.
"""

from __future__ import annotations

import asyncio
import signal

import uvicorn

from secrets_ledger.api.http_guard import guarded_http
from secrets_ledger.api.rest.app import create_app
from secrets_ledger.core.settings import Settings
from secrets_ledger.runtime import LedgerRuntime


def serve(settings: Settings, host: str, port: int, *, follow: bool = True) -> int:
    with LedgerRuntime(settings, follow=follow, serving=True) as runtime:
        configured = settings.bootstrap_token
        first_token = asyncio.run(runtime.ledger.tokens.bootstrap(
            configured.get_secret_value() if configured is not None else None))
        if first_token is not None:
            # Shown once, on stdout only; the store keeps nothing but its hash.
            print(f"admin token (shown once, keep it safe): {first_token}", flush=True)
        app = create_app(runtime.ledger, runtime.projector.lag, settings.readiness_max_lag)
        config = uvicorn.Config(
            app, host=host, port=port, timeout_graceful_shutdown=30, access_log=False,
            log_level="info", server_header=False,
            http=guarded_http(settings.header_timeout, settings.body_timeout,
                              settings.max_connections),
            limit_concurrency=settings.max_connections,
            timeout_keep_alive=int(settings.keep_alive_timeout))
        # uvicorn restores the handler it found and re-raises SIGTERM once it has drained:
        # with this one in place, run() returns and the runtime below closes cleanly.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        uvicorn.Server(config).run()
    return 0
