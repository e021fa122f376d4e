"""The Secrets Manager operations: each reads AWS's request fields, calls the core, and
answers with AWS's field names. Nothing here decides who may do what or touches storage:
the core does (its use cases, through ``ledger.managed`` and ``ledger.managed_reads``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from secrets_ledger.api.aws.call import (
    MAX_BATCH_IDS,
    MAX_DESCRIPTION,
    MAX_RESULTS,
    NAME,
    Call,
    described,
    epoch,
    value_shape,
    written_shape,
)
from secrets_ledger.api.aws.errors import (
    AwsError,
    from_ledger,
    invalid_parameter,
    invalid_request,
)
from secrets_ledger.api.aws.filters import check_filters, matches
from secrets_ledger.api.aws.passwords import random_password
from secrets_ledger.core.managed_values import Deleted, SecretRef, labels_of
from secrets_ledger.domain import managed
from secrets_ledger.domain.errors import LedgerError
from secrets_ledger.domain.managed import SecretMetadata


async def create_secret(call: Call) -> dict[str, Any]:
    name = call.text("Name", required=True, limit=512)
    assert name is not None
    if not NAME.fullmatch(name):
        raise invalid_parameter("Invalid name. Must be a valid name containing alphanumeric"
                                " characters, or any of the following: -/_+=.@!")
    description = call.text("Description", limit=MAX_DESCRIPTION)
    metadata = SecretMetadata(description, call.text("KmsKeyId", limit=2048),
                              call.tags() or None)
    written = await call.ledger.managed.create(
        call.caller, call.tenant, call.space, name, metadata, call.value(),
        call.client_id(), call.request)
    return written_shape(call, written)


async def put_secret_value(call: Call) -> dict[str, Any]:
    ref, value, client_id = call.secret_ref(), call.value(), call.client_id()
    if value is None:
        raise invalid_request("You must provide either SecretString or SecretBinary.")
    stages = call.body.get("VersionStages") or [managed.CURRENT]
    if not isinstance(stages, list) or not 1 <= len(stages) <= 20 or not all(
            isinstance(s, str) and 1 <= len(s) <= 256 for s in stages):
        raise invalid_parameter("Invalid VersionStages.")
    written = await call.ledger.managed.put(call.caller, call.tenant, call.space, ref,
                                            value, client_id, stages, call.request)
    return {**written_shape(call, written), "VersionStages": list(written.labels)}


async def update_secret(call: Call) -> dict[str, Any]:
    ref, value, client_id = call.secret_ref(), call.value(), call.client_id()
    written = await call.ledger.managed.update(
        call.caller, call.tenant, call.space, ref,
        call.text("Description", limit=MAX_DESCRIPTION), call.text("KmsKeyId", limit=2048),
        value, client_id, call.request)
    return written_shape(call, written)


async def get_secret_value(call: Call) -> dict[str, Any]:
    found = await call.ledger.managed_reads.value(
        call.caller, call.tenant, call.space, call.secret_ref(),
        call.text("VersionId", limit=64), call.text("VersionStage", limit=256), call.request)
    return value_shape(call, found)


async def describe_secret(call: Call) -> dict[str, Any]:
    row = await call.ledger.managed_reads.describe(call.caller, call.tenant, call.space,
                                                   call.secret_ref())
    return described(call, row)


def _page(call: Call, items: list[Any]) -> tuple[list[Any], str | None]:
    limit = call.body.get("MaxResults") or MAX_RESULTS
    token = call.body.get("NextToken") or "0"
    if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS or not (
            isinstance(token, str) and token.isdigit() and len(token) < 10):
        raise invalid_parameter("Invalid MaxResults or NextToken.")
    start = int(token)
    following = str(start + limit) if start + limit < len(items) else None
    return items[start:start + limit], following


async def list_secrets(call: Call) -> dict[str, Any]:
    filters = check_filters(call.body.get("Filters") or [])
    rows = await call.ledger.managed_reads.listing(
        call.caller, call.tenant, call.space, bool(call.body.get("IncludePlannedDeletion")))
    page, following = _page(call, [r for r in rows if matches(r, filters)])
    items = []
    for row in page:
        item = described(call, row)
        if "VersionIdsToStages" in item:
            item["SecretVersionsToStages"] = item.pop("VersionIdsToStages")
        items.append(item)
    return {"SecretList": items, **({"NextToken": following} if following else {})}


async def batch_get_secret_value(call: Call) -> dict[str, Any]:
    ids, filters = call.body.get("SecretIdList"), call.body.get("Filters")
    if ids and filters:
        raise invalid_parameter("Either 'SecretIdList' or 'Filters' must be provided, but"
                                " not both.")
    if call.body.get("MaxResults") and not filters:
        raise invalid_parameter("'Filters' not specified. 'Filters' must also be specified"
                                " when 'MaxResults' is provided.")
    if filters:
        checked = check_filters(filters)
        rows = await call.ledger.managed_reads.listing(call.caller, call.tenant,
                                                       call.space, False)
        page, following = _page(call, [r for r in rows if matches(r, checked)])
        refs, names = [SecretRef(r.name) for r in page], [r.name for r in page]
    else:
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BATCH_IDS:
            raise invalid_parameter("Invalid SecretIdList.")
        following = None
        names, refs = [], []
        for secret_id in ids:
            try:
                refs.append(call.with_body({"SecretId": secret_id}).secret_ref())
            except AwsError:  # an ARN of elsewhere: nothing of this tenant is named
                refs.append(SecretRef(""))
            names.append(str(secret_id))
    found = await call.ledger.managed_reads.values(call.caller, call.tenant, call.space,
                                                   refs, call.request)
    values, errors = [], []
    for name, result in zip(names, found, strict=True):
        if isinstance(result, LedgerError) and filters:
            raise result  # a secret the filters chose cannot be read: the call fails
        if isinstance(result, LedgerError):
            error = _error_of(call, result, "BatchGetSecretValue")
            errors.append({"SecretId": name, "ErrorCode": error.error_type,
                           "Message": error.message})
        else:
            values.append(value_shape(call, result))
    return {"SecretValues": values, "Errors": errors,
            **({"NextToken": following} if following else {})}


def _error_of(call: Call, error: LedgerError, operation: str) -> AwsError:
    return from_ledger(error, operation, call.region, call.account)


async def delete_secret(call: Call) -> dict[str, Any]:
    ref = call.secret_ref()
    window = call.body.get("RecoveryWindowInDays")
    force = call.body.get("ForceDeleteWithoutRecovery")
    if window is not None and (not isinstance(window, int) or not 7 <= window <= 30):
        raise invalid_parameter("The RecoveryWindowInDays value must be between 7 and 30 days"
                                " (inclusive).")
    if window and force:
        raise invalid_parameter("You can't use ForceDeleteWithoutRecovery in conjunction with"
                                " RecoveryWindowInDays.")
    deleted: Deleted = await call.ledger.managed.delete(
        call.caller, call.tenant, call.space, ref, window, bool(force), call.request)
    return {"ARN": call.arn(deleted.name, deleted.suffix), "Name": deleted.name,
            "DeletionDate": epoch(deleted.deletion_date)}


async def restore_secret(call: Call) -> dict[str, Any]:
    written = await call.ledger.managed.restore(call.caller, call.tenant, call.space,
                                                call.secret_ref(), call.request)
    return written_shape(call, written)


async def tag_resource(call: Call) -> dict[str, Any]:
    tags = call.tags()
    await call.ledger.managed.tag(call.caller, call.tenant, call.space, call.secret_ref(),
                                  [(k, v) for k, v in tags], [], call.request)
    return {}


async def untag_resource(call: Call) -> dict[str, Any]:
    keys = call.body.get("TagKeys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise invalid_parameter("Invalid TagKeys.")
    await call.ledger.managed.tag(call.caller, call.tenant, call.space, call.secret_ref(),
                                  [], keys, call.request)
    return {}


async def list_secret_version_ids(call: Call) -> dict[str, Any]:
    row = await call.ledger.managed_reads.describe(call.caller, call.tenant, call.space,
                                                   call.secret_ref())
    include_all = bool(call.body.get("IncludeDeprecated"))
    versions = []
    for version, client_id, created_at, *_ in row.versions:
        labels = list(labels_of(row.labels, version))
        if labels or include_all:
            versions.append({"VersionId": client_id, "VersionStages": labels,
                             "CreatedDate": epoch(created_at)})
    return {"ARN": call.arn(row.name, row.suffix), "Name": row.name, "Versions": versions}


async def update_secret_version_stage(call: Call) -> dict[str, Any]:
    label = call.text("VersionStage", required=True, limit=256)
    assert label is not None
    written = await call.ledger.managed.move_label(
        call.caller, call.tenant, call.space, call.secret_ref(), label,
        call.text("MoveToVersionId", limit=64), call.text("RemoveFromVersionId", limit=64),
        call.request)
    return written_shape(call, written)


async def get_random_password(call: Call) -> dict[str, Any]:
    return {"RandomPassword": random_password(call.body)}


OPERATIONS: dict[str, Callable[[Call], Awaitable[dict[str, Any]]]] = {
    "CreateSecret": create_secret,
    "GetSecretValue": get_secret_value,
    "PutSecretValue": put_secret_value,
    "UpdateSecret": update_secret,
    "DescribeSecret": describe_secret,
    "ListSecrets": list_secrets,
    "DeleteSecret": delete_secret,
    "RestoreSecret": restore_secret,
    "BatchGetSecretValue": batch_get_secret_value,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListSecretVersionIds": list_secret_version_ids,
    "UpdateSecretVersionStage": update_secret_version_stage,
    "GetRandomPassword": get_random_password,
}
