"""``secrets-ledger serve``: migrations, bootstrap token, projector thread, uvicorn.

uvicorn handles SIGTERM: it stops accepting, lets in-flight requests finish (every
acknowledged write was committed before its response), then the runtime closes.
"""

from __future__ import annotations

import signal
import sys

import uvicorn

from secrets_ledger.api.app import create_app
from secrets_ledger.domain.tenant import RequestContext
from secrets_ledger.service.runtime import LedgerRuntime
from secrets_ledger.service.settings import Settings
from secrets_ledger.service.tokens import TokenStore


def bootstrap_admin(tokens: TokenStore, settings: Settings) -> str | None:
    """Makes the bootstrap token an admin; on an empty store, issues one admin token."""
    if settings.bootstrap_token is not None:
        tokens.ensure_bootstrap(settings.bootstrap_token.get_secret_value())
        return None
    if tokens.has_admin():
        return None
    issued = tokens.issue("admin", None, None, "first start",
                          RequestContext(actor="serve", request_id="bootstrap"))
    return issued.token


def serve(settings: Settings, host: str, port: int, *, follow: bool = True) -> int:
    with LedgerRuntime(settings, follow=follow) as runtime:
        tokens = TokenStore(runtime.storage.db, runtime.ledger)
        first_token = bootstrap_admin(tokens, settings)
        if first_token is not None:
            # Shown once, on stdout only; the store keeps nothing but its hash.
            print(f"admin token (shown once, keep it safe): {first_token}", flush=True)
        config = uvicorn.Config(create_app(runtime.ledger, tokens), host=host, port=port,
                                timeout_graceful_shutdown=30, access_log=False,
                                log_level="info", server_header=False)
        # uvicorn restores the handler it found and re-raises SIGTERM once it has drained:
        # with this one in place, run() returns and the runtime below closes cleanly.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(serve(Settings(), "127.0.0.1", 8200))
