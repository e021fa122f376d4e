"""A pytest plugin for moto's own Secrets Manager tests, run in server mode against the
ledger's AWS façade (``TEST_SERVER_MODE_ENDPOINT``).

moto's decorator would sign with its fake credentials: switched off here, so every
request is signed with the key pair of a real ledger writer token (in the environment).
moto resets its own server between tests; the ledger has no such back door, so before
each test this plugin deletes every secret through the public API, in every region the
tests use.
"""

from __future__ import annotations

import os

import boto3
import pytest
from moto.core.config import default_user_config

default_user_config["core"]["mock_credentials"] = False
REGIONS = ("us-east-1", "us-east-2", "us-west-1", "us-west-2")


@pytest.fixture(autouse=True)
def _no_secrets_left() -> None:
    endpoint = os.environ["TEST_SERVER_MODE_ENDPOINT"]
    for region in REGIONS:
        client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint)
        for page in client.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
            for secret in page["SecretList"]:
                client.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
