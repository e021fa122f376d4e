"""The Vault KV v2 façade over real HTTP, as the vault CLI and hvac send their requests:
tenants by token and namespace, mounts per tenant, roles, reads audited in the native
history, unmounting that wipes while the history still verifies, the CLI's request
sequences with the fields it reads, and every bad request a Vault-shaped 4xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import Server, audit_items, issue_token, unique, verify

MERGE_PATCH = "application/merge-patch+json"


def vault(server: Server, token: str, namespace: str | None = None) -> httpx.Client:
    headers = {"X-Vault-Token": token}
    if namespace is not None:
        headers["X-Vault-Namespace"] = namespace
    return httpx.Client(base_url=server.vault_url + "/v1/", headers=headers, timeout=30)


def denied(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {"errors": ["permission denied"]}


def vault_error(response: httpx.Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert isinstance(errors, list)
    return [str(e) for e in errors]


@pytest.fixture
def kv(server: Server, writer_token: dict[str, Any]) -> Any:
    client = vault(server, writer_token["token"])
    assert client.post("sys/mounts/kvv2", json={"type": "kv",
                                                "options": {"version": "2"}}).status_code == 204
    yield client
    client.close()


# ---- who, where ------------------------------------------------------------------------


def test_a_tenant_token_works_only_in_its_own_namespace(server: Server, admin: httpx.Client,
                                                        kv: httpx.Client, tenant: str,
                                                        writer_token: dict[str, Any]) -> None:
    token = writer_token["token"]
    assert vault(server, token, tenant).get("sys/mounts").status_code == 200
    other = admin.post("/v1/tenants", json={"tenant": unique()}).json()["tenant"]
    for namespace in (other, "no-such-tenant"):  # the same answer, whether it exists or not
        denied(vault(server, token, namespace).get("sys/mounts"))
        denied(vault(server, token, namespace).post("kvv2/data/x", json={"data": {"a": 1}}))


def test_an_admin_token_names_the_tenant_in_the_namespace(server: Server, kv: httpx.Client,
                                                          tenant: str) -> None:
    kv.post("kvv2/data/app", json={"data": {"k": "v"}})
    as_admin = vault(server, server.admin_token, tenant)
    assert as_admin.get("kvv2/data/app").json()["data"]["data"] == {"k": "v"}
    assert vault_error(vault(server, server.admin_token).get("kvv2/data/app"), 400)


def test_a_missing_bad_or_revoked_token_is_permission_denied(server: Server,
                                                             admin: httpx.Client,
                                                             tenant: str) -> None:
    denied(httpx.get(server.vault_url + "/v1/sys/mounts"))
    denied(vault(server, "slt_0123456789abcdef_" + "x" * 43).get("sys/mounts"))
    token = issue_token(admin, tenant, "writer")
    assert vault(server, token["token"]).get("sys/mounts").status_code == 200
    admin.delete(f"/v1/tenants/{tenant}/tokens/{token['token_id']}")
    denied(vault(server, token["token"]).get("sys/mounts"))


def test_the_same_mount_name_in_two_tenants_holds_two_stores(
        server: Server, admin: httpx.Client, kv: httpx.Client) -> None:
    other = admin.post("/v1/tenants", json={"tenant": unique()}).json()["tenant"]
    theirs = vault(server, issue_token(admin, other, "writer")["token"])
    assert theirs.get("kvv2/data/app").status_code == 404  # no such mount there
    theirs.post("sys/mounts/kvv2", json={"type": "kv", "options": {"version": "2"}})
    kv.post("kvv2/data/app", json={"data": {"who": "ours"}})
    theirs.post("kvv2/data/app", json={"data": {"who": "theirs"}})
    assert kv.get("kvv2/data/app").json()["data"]["data"] == {"who": "ours"}
    assert theirs.get("kvv2/data/app").json()["data"]["data"] == {"who": "theirs"}
    assert kv.get("kvv2/data/app").json()["data"]["metadata"]["version"] == 1


def test_roles_read_write_and_see_metadata_as_the_policy_says(
        server: Server, kv: httpx.Client, reader_token: dict[str, Any],
        auditor_token: dict[str, Any]) -> None:
    kv.post("kvv2/data/app", json={"data": {"k": "v"}})
    reader, auditor = vault(server, reader_token["token"]), vault(server, auditor_token["token"])
    assert reader.get("kvv2/data/app").status_code == 200
    denied(reader.post("kvv2/data/app", json={"data": {"k": "w"}}))
    denied(reader.post("sys/mounts/other", json={"type": "kv", "options": {"version": 2}}))
    assert auditor.get("kvv2/metadata/app").json()["data"]["current_version"] == 1
    denied(auditor.get("kvv2/data/app"))


# ---- the ledger's guarantees -------------------------------------------------------------


def test_every_value_read_is_in_the_audit_trail(kv: httpx.Client, auditor: httpx.Client,
                                                tenant: str) -> None:
    kv.post("kvv2/data/app", json={"data": {"k": "v"}})
    kv.get("kvv2/data/app")
    kv.get("kvv2/data/app", params={"version": 1})
    reads = audit_items(auditor, tenant, action="read")
    assert [(r["key"].rsplit(":", 1)[1], r["version"]) for r in reads] == [("app", 1),
                                                                          ("app", 1)]
    assert all(r["key"].startswith("kv:") for r in reads)


def test_unmounting_wipes_and_the_history_still_verifies(kv: httpx.Client,
                                                         auditor: httpx.Client,
                                                         tenant: str) -> None:
    kv.post("kvv2/data/app", json={"data": {"k": "v"}})
    assert kv.delete("sys/mounts/kvv2").status_code == 204
    assert kv.get("kvv2/data/app").status_code == 404
    kv.post("sys/mounts/kvv2", json={"type": "kv", "options": {"version": "2"}})
    assert kv.get("kvv2/data/app").status_code == 404  # a new mount starts empty
    assert kv.request("LIST", "kvv2/metadata/").status_code == 404
    assert kv.post("kvv2/data/app", json={"data": {"k": "w"}}).json()["data"]["version"] == 1
    destroyed = [r for r in audit_items(auditor, tenant, action="destroy")]
    assert len(destroyed) == 1 and destroyed[0]["version"] == 1
    assert verify(auditor, tenant)["ok"] is True


def test_a_cas_mismatch_is_400_never_412(kv: httpx.Client) -> None:
    kv.post("kvv2/data/app", json={"data": {"k": "v"}})
    response = kv.post("kvv2/data/app", json={"data": {"k": "w"}, "options": {"cas": 5}})
    assert vault_error(response, 400) == [
        "check-and-set parameter did not match the current version"]
    response = kv.post("kvv2/data/app", json={"data": {"k": "w"}, "options": {"cas": 0}})
    assert response.status_code == 400


# ---- what the vault CLI sends -------------------------------------------------------------


def test_the_cli_preflight_finds_a_kv_v2_mount(kv: httpx.Client) -> None:
    for path in ("sys/internal/ui/mounts/kvv2/app", "sys/mounts-all/kvv2/app"):
        data = kv.get(path).json()["data"]
        assert data["path"] == "kvv2/"
        assert data["options"]["version"] == "2"  # a string, as the CLI compares it
        assert data["type"] == "kv"


def test_the_cli_kv_commands_as_it_sends_them(kv: httpx.Client) -> None:
    # vault kv put kvv2/app user=a pass=b
    put = kv.put("kvv2/data/app", json={"data": {"user": "a", "pass": "b"}, "options": {}})
    assert put.json()["data"]["version"] == 1
    # vault kv patch kvv2/app pass=c (PATCH, a JSON merge patch)
    patched = kv.patch("kvv2/data/app", json={"data": {"pass": "c"}, "options": {}},
                       headers={"Content-Type": MERGE_PATCH})
    assert patched.status_code == 200 and patched.json()["data"]["version"] == 2
    # vault kv get -version=1 kvv2/app
    first = kv.get("kvv2/data/app", params={"version": "1"}).json()["data"]
    assert first["data"] == {"user": "a", "pass": "b"} and first["metadata"]["version"] == 1
    assert kv.get("kvv2/data/app").json()["data"]["data"] == {"user": "a", "pass": "c"}
    # vault kv metadata put -max-versions=5 -custom-metadata=team=ops kvv2/app
    assert kv.put("kvv2/metadata/app", json={"max_versions": 5, "custom_metadata": {
        "team": "ops"}}).status_code == 204
    # vault kv metadata get kvv2/app
    meta = kv.get("kvv2/metadata/app").json()["data"]
    assert (meta["max_versions"], meta["custom_metadata"], meta["current_version"]) == (
        5, {"team": "ops"}, 2)
    assert set(meta["versions"]) == {"1", "2"}
    # vault kv metadata patch -custom-metadata=team= -custom-metadata=tier=1 kvv2/app
    assert kv.patch("kvv2/metadata/app", json={"custom_metadata": {"team": None, "tier": "1"}},
                    headers={"Content-Type": MERGE_PATCH}).status_code == 204
    assert kv.get("kvv2/metadata/app").json()["data"]["custom_metadata"] == {"tier": "1"}
    assert kv.patch("kvv2/metadata/none", json={"max_versions": 1},
                    headers={"Content-Type": MERGE_PATCH}).status_code == 404
    # vault kv list kvv2/ (the LIST method, and GET ?list=true)
    kv.put("kvv2/data/dir/inner", json={"data": {"x": 1}})
    assert kv.request("LIST", "kvv2/metadata/").json()["data"]["keys"] == ["app", "dir/"]
    assert kv.get("kvv2/metadata/", params={"list": "true"}).json()["data"]["keys"] == [
        "app", "dir/"]
    # vault kv delete -versions=1, undelete -versions=1, destroy -versions=1
    assert kv.put("kvv2/delete/app", json={"versions": [1]}).status_code == 204
    gone = kv.get("kvv2/data/app", params={"version": "1"})
    assert gone.status_code == 404 and gone.json()["data"]["metadata"]["deletion_time"]
    assert kv.put("kvv2/undelete/app", json={"versions": [1]}).status_code == 204
    assert kv.get("kvv2/data/app", params={"version": "1"}).status_code == 200
    assert kv.put("kvv2/destroy/app", json={"versions": [1]}).status_code == 204
    destroyed = kv.get("kvv2/data/app", params={"version": "1"})
    assert destroyed.status_code == 404 and destroyed.json()["data"]["metadata"]["destroyed"]
    # vault kv get -field... subkeys (newer CLIs)
    assert kv.get("kvv2/subkeys/app").json()["data"]["subkeys"] == {"user": None,
                                                                   "pass": None}
    kv.put("kvv2/data/nested", json={"data": {"a": {"b": {"c": 1}}, "d": 2}})
    assert kv.get("kvv2/subkeys/nested").json()["data"]["subkeys"] == {
        "a": {"b": {"c": None}}, "d": None}
    assert kv.get("kvv2/subkeys/nested", params={"depth": "2"}).json()["data"][
        "subkeys"] == {"a": {"b": None}, "d": None}


def test_health_and_seal_status_need_no_token(server: Server) -> None:
    assert httpx.get(server.vault_url + "/v1/sys/health").json()["sealed"] is False
    assert httpx.get(server.vault_url + "/v1/sys/seal-status").json()["sealed"] is False


# ---- bad input -------------------------------------------------------------------------------


def test_bad_requests_are_vault_shaped_4xx(kv: httpx.Client) -> None:
    cases = [
        kv.post("kvv2/data/app", content=b"{not json"),
        kv.post("kvv2/data/app", json={"data": "not an object"}),
        kv.post("kvv2/data/app", json={"data": {"k": 1}, "options": {"cas": "one"}}),
        kv.post("kvv2/delete/app", json={"versions": []}),
        kv.post("kvv2/delete/app", json={"versions": ["1"]}),
        kv.post("kvv2/metadata/app", json={"max_versions": -1}),
        kv.post("kvv2/metadata/app", json={"custom_metadata": "not-a-dict"}),
        kv.post("kvv2/metadata/app", json={"delete_version_after": "soon"}),
        kv.post("kvv2/config", json={"cas_required": "cats"}),
        kv.get("kvv2/data/app", params={"version": "-1"}),
        kv.post("sys/mounts/other", json={"type": "kv", "options": {"version": "1"}}),
        kv.post("sys/mounts/kvv2", json={"type": "kv", "options": {"version": "2"}}),
        kv.post("kvv2/data/app", json={"data": {"k": "\u0000" * 70_000}}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert isinstance(response.json()["errors"], list)
    for response in (kv.get("nothing-mounted-here/data/app"), kv.get("kvv2/unknown/app"),
                     kv.get("kvv2/data/../etc"), kv.get("v2/data")):
        assert response.status_code == 404, response.text
    for path in ("kvv2/data/a%00b", "kvv2/metadata/a%00", "sys/mounts/%00", "kvv2%01/data/x",
                 "kvv2/data/" + "x" * 1100):
        for method in ("GET", "POST", "DELETE"):
            response = kv.request(method, path, json={"data": {"k": 1}})
            assert vault_error(response, 400) == ["invalid path"], (method, path)
    huge = kv.post("kvv2/data/app", content=b"{" + b" " * (2 << 20) + b"}")
    assert vault_error(huge, 413)
