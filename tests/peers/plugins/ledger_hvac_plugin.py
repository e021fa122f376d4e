"""A pytest plugin for hvac's own KV v2 integration tests, run against the ledger's Vault
façade (``VAULT_ADDR``) instead of a ``vault`` binary it would start itself.

hvac's base class spawns, initialises and unseals Vault once per class, and gates cases
on ``vault -version``; here the version is given, and every test gets a client built
from ``VAULT_ADDR``, ``VAULT_TOKEN`` (a ledger token) and ``VAULT_NAMESPACE`` (the
tenant, which an admin token needs). State is reset as hvac's own cases do it: each
enables its mount and disables it afterwards, which wipes it.
"""

from __future__ import annotations

import os
from typing import Any

import hvac

from tests import utils
from tests.utils.hvac_integration_test_case import HvacIntegrationTestCase

utils.get_vault_version_string.cache = os.environ.get("LEDGER_VAULT_VERSION", "1.17.0")


def _no_server(cls: Any) -> None:
    cls.manager = None


def _client(self: Any) -> None:
    self.client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"],
                              namespace=os.environ.get("VAULT_NAMESPACE") or None)


def _nothing(self: Any) -> None:
    return None


HvacIntegrationTestCase.setUpClass = classmethod(_no_server)  # type: ignore[assignment]
HvacIntegrationTestCase.tearDownClass = classmethod(_no_server)  # type: ignore[assignment]
HvacIntegrationTestCase.setUp = _client  # type: ignore[method-assign]
HvacIntegrationTestCase.tearDown = _nothing  # type: ignore[method-assign]
