"""The AWS Secrets Manager façade over real HTTP, with boto3 (and raw signed requests for
what boto3 will not send): tenants isolated by name and by ARN, roles, reads audited in
the native history, signatures checked, and every bad request an AWS-shaped 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from freezegun import freeze_time

from secrets_ledger.core.signing_keys import aws_key_pair
from tests.e2e.helpers import Server, audit_items, issue_token, list_all_keys, verify

REGION = "us-east-1"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def sm(server: Server, token: str, region: str = REGION) -> Any:
    key_id, secret = aws_key_pair(token)
    return boto3.client("secretsmanager", region_name=region, endpoint_url=server.aws_url,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=NO_RETRIES)


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, status
    return error["Code"], error["Message"]


def signed(server: Server, token: str, target: str, body: bytes, *,
           at: datetime | None = None, secret: str | None = None,
           unsigned: tuple[str, ...] = (), service: str = "secretsmanager"
           ) -> httpx.Response:
    """A request signed by botocore's own signer (optionally at another time, with another
    secret, or leaving some headers unsigned), sent as is."""
    key_id, real_secret = aws_key_pair(token)
    request = AWSRequest("POST", server.aws_url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{target}"})
    signer = SigV4Auth(Credentials(key_id, secret or real_secret), service, REGION)
    if unsigned:
        def headers_to_sign(req: AWSRequest) -> HTTPHeaders:
            kept = HTTPHeaders()
            for name, value in SigV4Auth.headers_to_sign(signer, req).items():
                if name not in unsigned:
                    kept[name] = value
            return kept

        signer.headers_to_sign = headers_to_sign  # type: ignore[method-assign]
    with freeze_time(at or datetime.now(UTC)):
        signer.add_auth(request)
    return httpx.post(server.aws_url + "/", content=body, headers=dict(request.headers.items()))


def aws_error(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    body = response.json()
    assert set(body) == {"__type", "message"}, body
    assert response.headers["x-amzn-errortype"] == body["__type"]
    return str(body["__type"])


@pytest.fixture
def writer_sm(server: Server, writer_token: dict[str, Any]) -> Any:
    return sm(server, writer_token["token"])


# ---- isolation -----------------------------------------------------------------------


def test_another_tenant_finds_no_secret_by_name_or_by_arn(
        server: Server, admin: httpx.Client, writer_sm: Any, tenant: str) -> None:
    arn = writer_sm.create_secret(Name="shared", SecretString="ours")["ARN"]
    other = admin.post("/v1/tenants", json={"tenant": f"o-{tenant}"}).json()["tenant"]
    theirs = sm(server, issue_token(admin, other, "writer")["token"])
    version = writer_sm.describe_secret(SecretId="shared")["VersionIdsToStages"]
    [version_id] = version
    for secret_id in ("shared", arn):
        for call in (
                partial(theirs.get_secret_value, SecretId=secret_id),
                partial(theirs.describe_secret, SecretId=secret_id),
                partial(theirs.put_secret_value, SecretId=secret_id, SecretString="x"),
                partial(theirs.update_secret, SecretId=secret_id, Description="x"),
                partial(theirs.delete_secret, SecretId=secret_id),
                partial(theirs.restore_secret, SecretId=secret_id),
                partial(theirs.tag_resource, SecretId=secret_id,
                        Tags=[{"Key": "k", "Value": "v"}]),
                partial(theirs.untag_resource, SecretId=secret_id, TagKeys=["k"]),
                partial(theirs.list_secret_version_ids, SecretId=secret_id),
                partial(theirs.update_secret_version_stage, SecretId=secret_id,
                        VersionStage="X", MoveToVersionId=version_id)):
            assert error_of(call) == ("ResourceNotFoundException",
                                      "Secrets Manager can't find the specified secret.")
        [miss] = theirs.batch_get_secret_value(SecretIdList=[secret_id])["Errors"]
        assert miss["ErrorCode"] == "ResourceNotFoundException"
    assert theirs.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
    # A force delete of "its" name touches nothing of ours.
    theirs.delete_secret(SecretId="shared", ForceDeleteWithoutRecovery=True)
    assert theirs.create_secret(Name="shared", SecretString="theirs")["ARN"] != arn
    assert writer_sm.get_secret_value(SecretId=arn)["SecretString"] == "ours"


def test_an_arn_of_another_region_or_account_is_not_found(writer_sm: Any, server: Server,
                                                          writer_token: dict[str, Any]) -> None:
    arn = writer_sm.create_secret(Name="here", SecretString="v")["ARN"]
    west = sm(server, writer_token["token"], "us-west-2")
    assert error_of(lambda: west.get_secret_value(SecretId=arn))[0] == (
        "ResourceNotFoundException")
    assert error_of(lambda: west.get_secret_value(SecretId="here"))[0] == (
        "ResourceNotFoundException")
    elsewhere = arn.replace(":123456789012:", ":210987654321:")
    assert error_of(lambda: writer_sm.get_secret_value(SecretId=elsewhere))[0] == (
        "ResourceNotFoundException")


# ---- the native history ----------------------------------------------------------------


def test_every_value_read_is_in_the_tenant_audit_trail(writer_sm: Any, auditor: httpx.Client,
                                                       tenant: str) -> None:
    for name in ("a", "b", "c"):
        writer_sm.create_secret(Name=name, SecretString=f"value of {name}")
    writer_sm.get_secret_value(SecretId="a")
    values = writer_sm.batch_get_secret_value(SecretIdList=["a", "b", "c"])["SecretValues"]
    assert [v["SecretString"] for v in values] == ["value of a", "value of b", "value of c"]
    reads = [(i["key"], i["version"]) for i in audit_items(auditor, tenant, action="read")]
    assert reads[0] == ("sm:us-east-1:a", 1)
    assert sorted(reads[1:]) == [("sm:us-east-1:a", 1), ("sm:us-east-1:b", 1),  # one batch
                                 ("sm:us-east-1:c", 1)]


def test_facade_writes_are_in_the_native_history_and_it_verifies(
        writer_sm: Any, writer: httpx.Client, auditor: httpx.Client, tenant: str) -> None:
    writer_sm.create_secret(Name="db/password", SecretString="one")
    writer_sm.put_secret_value(SecretId="db/password", SecretString="two")
    writer_sm.delete_secret(SecretId="db/password", ForceDeleteWithoutRecovery=True)
    trail = [(i["action"], i["version"])
             for i in audit_items(auditor, tenant, key="sm:us-east-1:db/password")]
    assert trail == [("metadata_updated", None), ("write", 1), ("write", 2),
                     ("destroy", 1), ("destroy", 2)]
    assert verify(auditor, tenant)["ok"] is True
    # The native API lists only native keys, and cannot name a façade's key.
    writer.put(f"/v1/tenants/{tenant}/secrets/native", json={"value": "n"})
    assert [k["key"] for k in list_all_keys(writer, tenant)] == ["native"]
    assert writer.get(f"/v1/tenants/{tenant}/secrets/sm:us-east-1:db").status_code == 400
    assert writer_sm.list_secrets()["SecretList"] == []


# ---- roles -----------------------------------------------------------------------------


def test_a_reader_reads_and_a_writer_writes(server: Server, writer_sm: Any,
                                            reader_token: dict[str, Any]) -> None:
    writer_sm.create_secret(Name="svc", SecretString="v")
    reader = sm(server, reader_token["token"])
    assert reader.get_secret_value(SecretId="svc")["SecretString"] == "v"
    assert reader.describe_secret(SecretId="svc")["Name"] == "svc"
    assert error_of(lambda: reader.put_secret_value(SecretId="svc", SecretString="w"))[0] == (
        "AccessDeniedException")
    assert error_of(lambda: reader.create_secret(Name="new", SecretString="w"))[0] == (
        "AccessDeniedException")


def test_an_auditor_sees_metadata_never_values(server: Server, writer_sm: Any,
                                               auditor_token: dict[str, Any]) -> None:
    writer_sm.create_secret(Name="svc", SecretString="v")
    auditor = sm(server, auditor_token["token"])
    assert [s["Name"] for s in auditor.list_secrets()["SecretList"]] == ["svc"]
    assert len(auditor.list_secret_version_ids(SecretId="svc")["Versions"]) == 1
    assert error_of(lambda: auditor.get_secret_value(SecretId="svc"))[0] == (
        "AccessDeniedException")
    assert error_of(lambda: auditor.batch_get_secret_value(SecretIdList=["svc"]))[0] == (
        "AccessDeniedException")


# ---- signatures ------------------------------------------------------------------------


def test_a_correctly_signed_raw_request_is_answered(server: Server,
                                                    writer_token: dict[str, Any]) -> None:
    response = signed(server, writer_token["token"], "ListSecrets", b"{}")
    assert response.status_code == 200, response.text


def test_a_wrong_secret_is_an_invalid_signature(server: Server,
                                                writer_token: dict[str, Any]) -> None:
    response = signed(server, writer_token["token"], "ListSecrets", b"{}", secret="x" * 40)
    assert aws_error(response) == "InvalidSignatureException"


def test_an_unknown_or_revoked_key_is_unrecognized(server: Server, admin: httpx.Client,
                                                   tenant: str) -> None:
    token = issue_token(admin, tenant, "writer")
    stranger = "slt_0123456789abcdef_" + "x" * 43
    assert aws_error(signed(server, stranger, "ListSecrets", b"{}")) == (
        "UnrecognizedClientException")
    assert signed(server, token["token"], "ListSecrets", b"{}").status_code == 200
    assert admin.delete(f"/v1/tenants/{tenant}/tokens/{token['token_id']}").status_code == 204
    # Refused at once, though the server has seen (and keeps) its signing key.
    assert aws_error(signed(server, token["token"], "ListSecrets", b"{}")) == (
        "UnrecognizedClientException")
    never_used = issue_token(admin, tenant, "reader")
    assert admin.delete(f"/v1/tenants/{tenant}/tokens/{never_used['token_id']}"
                        ).status_code == 204
    assert aws_error(signed(server, never_used["token"], "ListSecrets", b"{}")) == (
        "UnrecognizedClientException")


def test_a_request_signed_outside_the_window_is_refused(server: Server,
                                                        writer_token: dict[str, Any]) -> None:
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        response = signed(server, writer_token["token"], "ListSecrets", b"{}",
                          at=datetime.now(UTC) + skew)
        assert aws_error(response) == "InvalidSignatureException"


def test_an_unsigned_host_is_refused(server: Server, writer_token: dict[str, Any]) -> None:
    response = signed(server, writer_token["token"], "ListSecrets", b"{}", unsigned=("host",))
    assert aws_error(response) == "InvalidSignatureException"


def test_a_body_or_target_changed_after_signing_is_refused(
        server: Server, writer_token: dict[str, Any]) -> None:
    good = signed(server, writer_token["token"], "ListSecrets", b"{}")
    assert good.status_code == 200
    token = writer_token["token"]
    key_id, secret = aws_key_pair(token)
    request = AWSRequest("POST", server.aws_url + "/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.ListSecrets"})
    SigV4Auth(Credentials(key_id, secret), "secretsmanager", REGION).add_auth(request)
    headers = dict(request.headers.items())
    assert aws_error(httpx.post(server.aws_url + "/", content=b'{"MaxResults": 1}',
                                headers=headers)) == "InvalidSignatureException"
    headers["X-Amz-Target"] = "secretsmanager.CreateSecret"
    assert aws_error(httpx.post(server.aws_url + "/", content=b"{}",
                                headers=headers)) == "InvalidSignatureException"


def test_a_signature_for_another_service_is_refused(server: Server,
                                                    writer_token: dict[str, Any]) -> None:
    response = signed(server, writer_token["token"], "ListSecrets", b"{}", service="ssm")
    assert aws_error(response) == "InvalidSignatureException"


def test_no_authorization_is_refused(server: Server) -> None:
    response = httpx.post(server.aws_url + "/", content=b"{}", headers={
        "X-Amz-Target": "secretsmanager.ListSecrets"})
    assert aws_error(response) == "MissingAuthenticationTokenException"


# ---- bad input -------------------------------------------------------------------------


def test_bad_requests_are_aws_shaped_4xx(server: Server, writer_token: dict[str, Any]) -> None:
    token = writer_token["token"]
    assert aws_error(signed(server, token, "NoSuchOperation", b"{}")) == (
        "UnknownOperationException")
    assert aws_error(signed(server, token, "ListSecrets", b"{not json")) == (
        "SerializationException")
    assert aws_error(signed(server, token, "ListSecrets", b"[1, 2]")) == (
        "SerializationException")
    assert aws_error(signed(server, token, "CreateSecret", b'{"Name": "s", "SecretString":'
                                                           b' "\\ud800"}')) == (
        "SerializationException")  # a lone surrogate is no JSON text
    for body in ({"Name": "bad name!", "SecretString": "v"}, {"Name": "x" * 513},
                 {"Name": "nul", "SecretString": "v", "Description": "a\u0000b"},
                 {"Name": "ok", "ClientRequestToken": "short"},
                 {"Name": "ok", "SecretString": "v", "SecretBinary": "dg=="},
                 {"Name": "ok", "SecretBinary": "not base64!"},
                 {"Name": "ok", "Tags": [{"Key": ""}]}, {"Name": 7}):
        response = signed(server, token, "CreateSecret", json.dumps(body).encode())
        assert aws_error(response) == "InvalidParameterException", body
    response = signed(server, token, "CreateSecret", json.dumps(
        {"Name": "big", "SecretString": "x" * 65_537}).encode())
    assert aws_error(response) == "InvalidParameterException"
    response = signed(server, token, "DeleteSecret", json.dumps(
        {"SecretId": "x", "RecoveryWindowInDays": 6}).encode())
    assert aws_error(response) == "InvalidParameterException"
    for secret_id in ("nul\u0000", "arn:aws:secretsmanager:us-east-1:123456789012:secret:\u0000",
                      ""):
        response = signed(server, token, "GetSecretValue", json.dumps(
            {"SecretId": secret_id}).encode())
        assert aws_error(response) in ("InvalidParameterException",
                                       "ResourceNotFoundException"), secret_id


def test_an_oversize_body_is_refused_before_it_is_read(server: Server) -> None:
    response = httpx.post(server.aws_url + "/", content=b"{" + b" " * (2 << 20) + b"}",
                          headers={"X-Amz-Target": "secretsmanager.ListSecrets"})
    assert aws_error(response, 413) == "RequestEntityTooLargeException"


def test_a_get_is_not_an_operation(server: Server) -> None:
    assert aws_error(httpx.get(server.aws_url + "/")) == "UnknownOperationException"


def test_the_facade_has_its_own_metrics(server: Server, writer_sm: Any,
                                        admin: httpx.Client) -> None:
    writer_sm.list_secrets()
    error_of(lambda: writer_sm.describe_secret(SecretId="no-such-secret"))
    metrics = admin.get("/metrics").text
    assert 'ledger_aws_requests_total{operation="ListSecrets",outcome="ok"}' in metrics
    assert ('ledger_aws_requests_total{operation="DescribeSecret",'
            'outcome="ResourceNotFoundException"}') in metrics


def test_the_native_port_does_not_speak_aws(server: Server,
                                            writer_token: dict[str, Any]) -> None:
    key_id, secret = aws_key_pair(writer_token["token"])
    native = boto3.client("secretsmanager", region_name=REGION, endpoint_url=server.base_url,
                          aws_access_key_id=key_id, aws_secret_access_key=secret,
                          config=NO_RETRIES)
    with pytest.raises(ClientError) as caught:
        native.list_secrets()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] in (404, 405)
