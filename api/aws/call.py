"""One Secrets Manager request as the operations read it (``Call``: who, which tenant and
region, which fields, each checked as AWS checks it), and the shapes of AWS's answers."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Any

from secrets_ledger.api.aws.errors import arn_of, invalid_parameter, not_found
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.managed_reads import ManagedSecretValue
from secrets_ledger.core.managed_values import ManagedValue, SecretRef, Written, labels_of
from secrets_ledger.core.ports import ManagedRow
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.times import parse_time

NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_ARN = re.compile(r"arn:aws:secretsmanager:([a-z0-9-]+):(\d{12}):secret:(.+)")
MAX_DESCRIPTION = 2048
MAX_TAGS = 50
MAX_RESULTS = 100
MAX_BATCH_IDS = 20


@dataclass(frozen=True)
class Call:
    """One request, authenticated: who, in which tenant and region, with which fields."""

    ledger: Ledger
    caller: Credential
    tenant: str  # the token's
    region: str
    account: str
    body: dict[str, Any]
    request: RequestInfo

    @property
    def space(self) -> str:
        return f"sm:{self.region}"

    def with_body(self, body: dict[str, Any]) -> Call:
        return Call(self.ledger, self.caller, self.tenant, self.region, self.account, body,
                    self.request)

    def arn(self, name: str, suffix: str) -> str:
        return arn_of(self.region, self.account, name, suffix)

    def text(self, field: str, *, required: bool = False, limit: int = 65_536) -> str | None:
        value = self.body.get(field)
        if value is None:
            if required:
                raise invalid_parameter(f"You must provide {field}.")
            return None
        if not isinstance(value, str) or len(value) > limit or not _storable(value):
            raise invalid_parameter(f"Invalid {field}.")
        return value

    def secret_ref(self, field: str = "SecretId") -> SecretRef:
        text = self.text(field, required=True, limit=2048)
        assert text is not None
        if not text:
            raise invalid_parameter(f"Invalid {field}.")
        arn = _ARN.fullmatch(text)
        if arn is None:
            return SecretRef(text)
        region, account, rest = arn.groups()
        if region != self.region or account != self.account:
            # Another region or account is another namespace: no such secret here.
            raise not_found()
        return SecretRef(rest, from_arn=True)

    def client_id(self) -> str:
        token = self.text("ClientRequestToken", limit=1024)
        if token is None:
            return str(uuid.uuid4())
        if not 32 <= len(token) <= 64:
            raise invalid_parameter("ClientRequestToken must be 32-64 characters long.")
        return token

    def value(self) -> ManagedValue | None:
        string, binary = self.body.get("SecretString"), self.body.get("SecretBinary")
        if string is not None and binary is not None:
            raise invalid_parameter("You can't specify both a binary secret value and a"
                                    " string secret value in the same secret.")
        if string is not None:
            if not isinstance(string, str) or not _storable(string, nul=True):
                raise invalid_parameter("Invalid SecretString.")
            return string
        if binary is not None:
            try:
                return base64.b64decode(str(binary), validate=True)
            except (binascii.Error, ValueError):
                raise invalid_parameter("Invalid SecretBinary.") from None
        return None

    def tags(self, field: str = "Tags") -> list[list[str]]:
        tags = self.body.get(field) or []
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            raise invalid_parameter("Invalid Tags.")
        found: dict[str, str] = {}
        for tag in tags:
            key, value = (tag.get("Key"), tag.get("Value", "")) if isinstance(tag, dict) else (
                None, None)
            if not isinstance(key, str) or not 1 <= len(key) <= 128 or not isinstance(
                    value, str) or len(value) > 256 or not _storable(key + value):
                raise invalid_parameter("Invalid Tags.")
            found[key] = value
        return [[k, v] for k, v in found.items()]


def _storable(text: str, *, nul: bool = False) -> bool:
    """Text either backend stores: valid Unicode, and no NUL (allowed in a value, which
    is sealed, not stored as text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return nul or "\x00" not in text


def epoch(stored: str | None) -> float | None:
    return None if stored is None else parse_time(stored).timestamp()


def written_shape(call: Call, written: Written) -> dict[str, Any]:
    answer: dict[str, Any] = {"ARN": call.arn(written.name, written.suffix),
                              "Name": written.name}
    if written.client_id is not None:
        answer["VersionId"] = written.client_id
    return answer


def stages_of(row: ManagedRow) -> dict[str, list[str]]:
    """Versions with labels (those without are deprecated, as AWS lists them)."""
    stages: dict[str, list[str]] = {}
    for version, client_id, *_ in row.versions:
        labels = list(labels_of(row.labels, version))
        if labels:
            stages[client_id] = labels
    return stages


def described(call: Call, row: ManagedRow) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "ARN": call.arn(row.name, row.suffix), "Name": row.name,
        "LastChangedDate": epoch(row.changed_at), "CreatedDate": epoch(row.created_at)}
    if row.description:
        answer["Description"] = row.description
    if row.kms_key_id is not None:
        answer["KmsKeyId"] = row.kms_key_id
    if row.tags is not None:
        answer["Tags"] = [{"Key": k, "Value": v} for k, v in row.tags]
        owning = next((v for k, v in row.tags if k == "aws:secretsmanager:owningService"), None)
        if owning is not None:
            answer["OwningService"] = owning
    if row.deleted_at is not None:
        answer["DeletedDate"] = epoch(row.deleted_at)
    stages = stages_of(row)
    if stages:
        answer["VersionIdsToStages"] = stages
    return answer


def value_shape(call: Call, found: ManagedSecretValue) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "ARN": call.arn(found.row.name, found.row.suffix), "Name": found.row.name,
        "VersionId": found.client_id, "VersionStages": list(found.labels),
        "CreatedDate": epoch(found.created_at)}
    if isinstance(found.value, bytes):
        answer["SecretBinary"] = base64.b64encode(found.value).decode("ascii")
    else:
        answer["SecretString"] = found.value
    return answer
