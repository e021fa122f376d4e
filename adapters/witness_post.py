"""How the ledger reaches its witnesses (``log_ports.WitnessPost``): HTTP POST, kept-alive
connections, short timeouts (a witness away delays nothing but its own cosignature)."""

from __future__ import annotations

import httpx

TIMEOUT_SECONDS = 3.0


class WitnessClient:
    def __init__(self) -> None:
        self._client = httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)

    def __call__(self, url: str, body: bytes) -> tuple[int, str]:
        response = self._client.post(url, content=body)
        return response.status_code, response.text[:65536]

    def close(self) -> None:
        self._client.close()
