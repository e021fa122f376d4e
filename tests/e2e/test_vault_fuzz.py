"""Any request a Vault client with a valid token can send, chosen by hypothesis: any
method, any path under a mount or ``sys/``, any query and any JSON body. The answer is
never a 5xx, and every error is Vault-shaped (``{"errors": [...]}``); the tenant's
history still verifies."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.helpers import Server, verify

SEGMENTS = st.sampled_from(["kvv2", "sys", "mounts", "data", "metadata", "delete", "undelete",
                            "destroy", "config", "subkeys", "a", "b/c", "", "..", "%00",
                            "internal", "ui", "mounts-all", "x" * 300, "a%01b", "%7f",
                            "%ED%A0%80"])
PATHS = st.lists(SEGMENTS, min_size=1, max_size=5).map("/".join)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "LIST", "PATCH"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70),
                                                          max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
FIELDS = st.sampled_from(["data", "options", "versions", "max_versions", "cas_required",
                          "delete_version_after", "custom_metadata", "type", "cas"])
BODIES = st.one_of(st.none(), st.dictionaries(FIELDS, VALUES, max_size=4))
QUERIES = st.dictionaries(st.sampled_from(["version", "list"]),
                          st.sampled_from(["1", "true", "-1", "x", "99999999999999999999"]),
                          max_size=2)


def test_no_request_gets_a_server_error(server: Server, writer_token: dict[str, Any],
                                        auditor: httpx.Client, tenant: str) -> None:
    client = httpx.Client(base_url=server.vault_url + "/v1/", timeout=30,
                          headers={"X-Vault-Token": writer_token["token"]})
    client.post("sys/mounts/kvv2", json={"type": "kv", "options": {"version": "2"}})
    client.post("kvv2/data/a", json={"data": {"k": "v"}})

    @settings(max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "300")), deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(METHODS, PATHS, QUERIES, BODIES)
    def any_request(method: str, path: str, query: dict[str, str],
                    body: dict[str, Any] | None) -> None:
        content = b"" if body is None else json.dumps(body).encode()
        # An absolute URL: httpx refuses a relative one whose path starts "//".
        response = client.request(method, f"{server.vault_url}/v1/{path}", params=query,
                                  content=content)
        assert response.status_code < 500, (method, path, query, body, response.text)
        if response.status_code >= 400:
            assert isinstance(response.json()["errors"], list)

    any_request()
    assert verify(auditor, tenant)["ok"] is True
