"""The typed client's change records: a newer server may add fields to a change."""

from __future__ import annotations

from secrets_ledger.api.rest.client import FeedChange, _feed_change

CHANGE = {"position": 65536, "tenant": "acme", "at": "2026-12-05T00:00:00.000000Z",
          "action": "write", "key": "db/password", "version": 2, "actor": "tok_1",
          "request_id": "req-1", "stream_version": 3, "log_index": 2}


def test_a_change_with_a_field_this_client_does_not_know_still_parses() -> None:
    assert _feed_change({**CHANGE, "added_later": "x"}) == FeedChange(**CHANGE)
