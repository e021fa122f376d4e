"""Vault's ``sys/`` paths the clients send: the mounts (list, enable, disable) and the
vault CLI's preflight (``sys/internal/ui/mounts/<path>``, ``sys/mounts-all/<path>``)."""

from __future__ import annotations

from typing import Any

from secrets_ledger.api.vault.request import NO_CONTENT, NOT_FOUND, Request, VaultError, bad
from secrets_ledger.core.ports import MountRow


def _mount_entry(mount: MountRow) -> dict[str, Any]:
    return {"type": mount.type, "description": "", "accessor": f"kv_{mount.mount_id[:8]}",
            "uuid": mount.mount_id, "options": {k: str(v) for k, v in mount.options.items()},
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
            "local": False, "seal_wrap": False, "external_entropy_access": False}


async def sys_route(request: Request, path: str) -> tuple[int, Any]:
    ledger, caller, tenant = request.ledger, request.caller, request.tenant
    if path in ("mounts", "mounts/") and request.method == "GET":
        listed = {f"{m.path}/": _mount_entry(m) for m in await ledger.kv_reads.mounts(
            caller, tenant)}
        return 200, {**listed, **request.envelope(listed)}
    for prefix in ("internal/ui/mounts/", "mounts-all/"):
        if path.startswith(prefix) and request.method == "GET":
            return await _preflight(request, path[len(prefix):])
    if path.startswith("mounts/"):
        name = path[len("mounts/"):].strip("/")
        if not name:
            raise NOT_FOUND
        if request.method in ("POST", "PUT"):
            fields = request.json()
            options = fields.get("options") or {}
            if not isinstance(options, dict):
                raise bad("options must be an object")
            if str(options.get("version", "1")) != "2":
                raise bad("only the kv engine's version 2 is served here")
            await ledger.kv.enable_mount(caller, tenant, name, str(fields.get("type", "")),
                                         {"version": "2"}, request.info)
            return NO_CONTENT
        if request.method == "DELETE":
            await ledger.kv.disable_mount(caller, tenant, name, request.info)
            return NO_CONTENT
    raise NOT_FOUND


async def _preflight(request: Request, path: str) -> tuple[int, Any]:
    """The vault CLI's question "which mount, and which KV version?" before a kv command."""
    for mount in await request.ledger.kv_reads.mounts(request.caller, request.tenant):
        if path == mount.path or path.startswith(mount.path + "/"):
            entry = _mount_entry(mount)
            return 200, request.envelope({**entry, "path": f"{mount.path}/"})
    raise VaultError(403, {"errors": ["preflight capability check returned 403"]})
