"""Any request a signed client can send to the AWS façade, chosen by hypothesis: every
operation (and unknown ones) with any mix of AWS's field names and JSON values of any
shape (text with NUL and lone surrogates, huge numbers, nesting). The answer is a 200 or
an AWS-shaped 4xx, never a 5xx; and the tenant's history still verifies."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secrets_ledger.api.aws.operations import OPERATIONS
from secrets_ledger.core.signing_keys import aws_key_pair
from tests.e2e.helpers import Server, verify

FIELDS = ("Name", "SecretId", "SecretString", "SecretBinary", "ClientRequestToken",
          "Description", "KmsKeyId", "Tags", "TagKeys", "VersionId", "VersionStage",
          "VersionStages", "Filters", "MaxResults", "NextToken", "IncludePlannedDeletion",
          "IncludeDeprecated", "RecoveryWindowInDays", "ForceDeleteWithoutRecovery",
          "SecretIdList", "MoveToVersionId", "RemoveFromVersionId", "PasswordLength",
          "ExcludeCharacters", "RequireEachIncludedType", "IncludeSpace")
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(
    ["fuzz", "fuzz/a", "", "\x00", "x" * 600, "AWSCURRENT", "AWSPREVIOUS",
     "arn:aws:secretsmanager:us-east-1:123456789012:secret:fuzz-abcdef", "a" * 32,
     "dGVzdA==", "!fuzz", "name"]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["Key", "Value", "Values",
                                                                  *FIELDS[:3]]), inner,
                                                 max_size=3)), max_leaves=8)
BODIES = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6)
OPERATION_NAMES = st.one_of(st.sampled_from(sorted(OPERATIONS)),
                            st.sampled_from(["RotateSecret", "", "secretsmanager", "X" * 300]))


def send(server: Server, token: str, operation: str, body: bytes) -> httpx.Response:
    key_id, secret = aws_key_pair(token)
    request = AWSRequest("POST", server.aws_url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{operation}"})
    SigV4Auth(Credentials(key_id, secret), "secretsmanager", "us-east-1").add_auth(request)
    return httpx.post(server.aws_url + "/", content=body, headers=dict(request.headers.items()),
                      timeout=30)


def test_no_request_gets_a_server_error(server: Server, writer_token: dict[str, Any],
                                        auditor: httpx.Client, tenant: str) -> None:
    token = writer_token["token"]
    send(server, token, "CreateSecret", json.dumps({"Name": "fuzz",
                                                    "SecretString": "v"}).encode())

    @settings(max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "300")), deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(OPERATION_NAMES, BODIES)
    def any_request(operation: str, fields: dict[str, Any]) -> None:
        body = json.dumps(fields).encode()  # lone surrogates arrive escaped, as JSON allows
        response = send(server, token, operation, body)
        assert response.status_code < 500, (operation, fields, response.text)
        if response.status_code != 200:
            error = response.json()
            assert set(error) == {"__type", "message"}, error
            assert response.headers["x-amzn-errortype"] == error["__type"]

    any_request()
    assert verify(auditor, tenant)["ok"] is True
