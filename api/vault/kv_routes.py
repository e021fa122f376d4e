"""Vault's paths, translated: ``sys/mounts`` and the KV v2 engine's ``config``, ``data``,
``delete``, ``undelete``, ``destroy``, ``metadata`` and ``subkeys`` under a mount, with
Vault's request and response shapes (``hashicorp/vault`` and hvac's ``kv_v2.py``)."""

from __future__ import annotations

from typing import Any

from secrets_ledger.api.vault.durations import format_duration, parse_duration
from secrets_ledger.api.vault.request import (
    NO_CONTENT,
    NOT_FOUND,
    UNSUPPORTED,
    Request,
    bad,
)
from secrets_ledger.api.vault.sys_routes import sys_route
from secrets_ledger.core.kv_reads import KvVersion, describe
from secrets_ledger.core.ports import ManagedRow, MountRow
from secrets_ledger.domain.errors import SecretNotFound

KV_OPERATIONS = ("config", "data", "delete", "undelete", "destroy", "metadata", "subkeys")


async def route(request: Request) -> tuple[int, Any]:
    path = request.path
    if path.startswith("sys/"):
        return await sys_route(request, path[len("sys/"):])
    mount, _, rest = path.partition("/")
    operation, _, key = rest.partition("/")
    if not mount or operation not in KV_OPERATIONS:
        raise NOT_FOUND
    return await _KV[operation](request, mount, key)


# ---- kv v2 ----------------------------------------------------------------------------


async def _config(request: Request, mount: str, key: str) -> tuple[int, Any]:
    if key:
        raise NOT_FOUND
    if request.method == "GET":
        found = await request.ledger.kv_reads.mount(request.caller, request.tenant, mount)
        return 200, request.envelope(_settings_out(found.config))
    if request.method in ("POST", "PUT"):
        await request.ledger.kv.configure_mount(request.caller, request.tenant, mount,
                                                _settings_in(request.json()), request.info)
        return NO_CONTENT
    raise UNSUPPORTED


def _settings_in(fields: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if fields.get("max_versions") is not None:
        value = fields["max_versions"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("max_versions must be a whole number from 0")
        settings["max_versions"] = value
    if fields.get("cas_required") is not None:
        if not isinstance(fields["cas_required"], bool):
            raise bad("cas_required must be true or false")
        settings["cas_required"] = fields["cas_required"]
    if fields.get("delete_version_after") is not None:
        try:
            settings["delete_version_after"] = parse_duration(fields["delete_version_after"])
        except Exception:
            raise bad("invalid delete_version_after") from None
    if fields.get("custom_metadata") is not None:
        custom = fields["custom_metadata"]
        if not isinstance(custom, dict) or len(custom) > 64 or not all(
                isinstance(k, str) and 0 < len(k) <= 128 and isinstance(v, str)
                and len(v) <= 512 and "\x00" not in k + v for k, v in custom.items()):
            raise bad("custom_metadata: at most 64 keys of 128 characters, values of 512")
        settings["custom_metadata"] = custom
    return settings


def _settings_out(settings: dict[str, Any]) -> dict[str, Any]:
    return {"max_versions": int(settings.get("max_versions") or 0),
            "cas_required": bool(settings.get("cas_required")),
            "delete_version_after": format_duration(
                int(settings.get("delete_version_after") or 0))}


def _version_metadata(row: ManagedRow, version: KvVersion) -> dict[str, Any]:
    custom = (row.settings or {}).get("custom_metadata")
    return {"created_time": version.created_time, "custom_metadata": custom or None,
            "deletion_time": version.deletion_time, "destroyed": version.destroyed,
            "version": version.version}


def _versions(request: Request) -> list[int]:
    versions = request.json().get("versions")
    if not isinstance(versions, list) or not versions or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in versions):
        raise bad("no version number provided")
    return versions


async def _data(request: Request, mount: str, key: str) -> tuple[int, Any]:
    ledger, caller, tenant = request.ledger, request.caller, request.tenant
    if not key:
        raise NOT_FOUND
    if request.method == "GET":
        version = _query_int(request, "version")
        try:
            found, row = await ledger.kv_reads.read(caller, tenant, mount, key,
                                                    version or None, request.info)
        except SecretNotFound:
            raise NOT_FOUND from None
        body = request.envelope({"data": found.data, "metadata": _version_metadata(
            row, found)})
        return (200 if found.data is not None or not (found.deletion_time or found.destroyed)
                else 404), body
    if request.method in ("POST", "PUT"):
        fields = request.json()
        data, options = fields.get("data"), fields.get("options") or {}
        if not isinstance(data, dict):
            raise bad("no data provided")
        cas = options.get("cas") if isinstance(options, dict) else None
        if cas is not None and (isinstance(cas, bool) or not isinstance(cas, int)):
            raise bad("invalid cas")
        written = await ledger.kv.write(caller, tenant, mount, key, data, cas, request.info)
        return 200, request.envelope({"created_time": written.created_time,
                                      "custom_metadata": None, "deletion_time": "",
                                      "destroyed": False, "version": written.version})
    if request.method == "DELETE":
        try:
            await ledger.kv.delete_versions(caller, tenant, mount, key, None, request.info)
        except SecretNotFound as missing:
            if "path" in missing.extra:  # no such mount
                raise
        return NO_CONTENT
    if request.method == "PATCH":
        return await _patch(request, mount, key)
    raise UNSUPPORTED


async def _patch(request: Request, mount: str, key: str) -> tuple[int, Any]:
    """A JSON merge patch (RFC 7396) of the current version, written with its cas."""
    try:
        found, _ = await request.ledger.kv_reads.read(request.caller, request.tenant, mount,
                                                      key, None, request.info)
    except SecretNotFound:
        raise NOT_FOUND from None
    if found.data is None:
        raise NOT_FOUND
    patch = request.json().get("data")
    if not isinstance(patch, dict):
        raise bad("no data provided")
    merged = dict(found.data)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    written = await request.ledger.kv.write(request.caller, request.tenant, mount, key,
                                            merged, found.version, request.info)
    return 200, request.envelope({"created_time": written.created_time,
                                  "custom_metadata": None, "deletion_time": "",
                                  "destroyed": False, "version": written.version})


def _query_int(request: Request, name: str) -> int | None:
    values = request.query.get(name)
    if not values:
        return None
    if not values[0].isdigit() or len(values[0]) > 18:
        raise bad(f"invalid {name}")
    return int(values[0])


async def _version_op(request: Request, mount: str, key: str) -> tuple[int, Any]:
    if not key:
        raise NOT_FOUND
    if request.method not in ("POST", "PUT"):
        raise UNSUPPORTED
    operation = request.path.split("/")[1]
    versions = _versions(request)
    run = {"delete": request.ledger.kv.delete_versions,
           "undelete": request.ledger.kv.undelete_versions,
           "destroy": request.ledger.kv.destroy_versions}[operation]
    try:
        await run(request.caller, request.tenant, mount, key, versions, request.info)
    except SecretNotFound as missing:
        if "path" in missing.extra:
            raise
    return NO_CONTENT


async def _metadata(request: Request, mount: str, key: str) -> tuple[int, Any]:
    ledger, caller, tenant = request.ledger, request.caller, request.tenant
    if request.method == "LIST":
        names = await ledger.kv_reads.keys(caller, tenant, mount, key)
        if not names:
            raise NOT_FOUND
        return 200, request.envelope({"keys": names})
    if not key:
        raise NOT_FOUND
    if request.method == "GET":
        try:
            row, found = await ledger.kv_reads.metadata(caller, tenant, mount, key)
        except SecretNotFound:
            raise NOT_FOUND from None
        return 200, request.envelope(_key_metadata(row, found))
    if request.method in ("POST", "PUT"):
        await ledger.kv.set_metadata(caller, tenant, mount, key, _settings_in(request.json()),
                                     request.info)
        return NO_CONTENT
    if request.method == "DELETE":
        await ledger.kv.delete_metadata(caller, tenant, mount, key, request.info)
        return NO_CONTENT
    if request.method == "PATCH":  # a JSON merge patch of an existing key's metadata
        try:
            row, _ = await ledger.kv_reads.metadata(caller, tenant, mount, key)
        except SecretNotFound:
            raise NOT_FOUND from None
        fields = request.json()
        patch = fields.get("custom_metadata")
        if isinstance(patch, dict):
            custom = dict((row.settings or {}).get("custom_metadata") or {})
            for name, value in patch.items():
                if value is None:
                    custom.pop(name, None)
                else:
                    custom[name] = value
            fields = {**fields, "custom_metadata": custom}
        await ledger.kv.set_metadata(caller, tenant, mount, key, _settings_in(fields),
                                     request.info)
        return NO_CONTENT
    raise UNSUPPORTED


def _key_metadata(row: ManagedRow, mount: MountRow) -> dict[str, Any]:
    described = [describe(row, version, mount) for version in row.versions]
    settings = row.settings or {}
    return {
        **_settings_out(settings),
        "created_time": row.created_at, "updated_time": row.changed_at,
        "current_version": described[-1].version if described else 0,
        "oldest_version": described[0].version if described else 0,
        "custom_metadata": settings.get("custom_metadata") or None,
        "versions": {str(v.version): {"created_time": v.created_time,
                                      "deletion_time": v.deletion_time,
                                      "destroyed": v.destroyed} for v in described}}


async def _subkeys(request: Request, mount: str, key: str) -> tuple[int, Any]:
    if not key or request.method != "GET":
        raise NOT_FOUND
    found, row = await request.ledger.kv_reads.read(
        request.caller, request.tenant, mount, key, _query_int(request, "version"),
        request.info)
    if found.data is None:
        raise NOT_FOUND

    depth = _query_int(request, "depth") or 0  # 0: no limit

    def shape(value: Any, level: int) -> Any:
        """The keys, values replaced by null; at ``depth`` a nested object counts as a
        leaf too (Vault's ``depth``)."""
        if not isinstance(value, dict) or (depth and level >= depth):
            return None
        return {k: shape(v, level + 1) for k, v in value.items()}

    return 200, request.envelope({"subkeys": shape(found.data, 0),
                                  "metadata": _version_metadata(row, found)})


_KV = {"config": _config, "data": _data, "delete": _version_op, "undelete": _version_op,
       "destroy": _version_op, "metadata": _metadata, "subkeys": _subkeys}
