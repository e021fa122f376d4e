"""The stored time form: fixed width, UTC, microseconds, for any aware time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.times import format_time, parse_time

ZONES = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)),
                  st.integers(min_value=-14 * 60, max_value=14 * 60))
AWARE = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.one_of(st.just(UTC), ZONES))


@given(AWARE)
def test_a_time_is_stored_as_fixed_width_utc_with_microseconds(moment: datetime) -> None:
    text = format_time(moment)
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(text) == 27
    assert parse_time(text) == moment


@given(AWARE, AWARE)
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (format_time(a) < format_time(b)) == (a < b)


EXTREME = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                       timezones=st.one_of(st.just(UTC), ZONES))


@given(EXTREME)
def test_any_aware_time_a_client_can_write_parses_or_is_refused_as_invalid(
        moment: datetime) -> None:
    """Near year 1 or 9999 an offset moves the time out of range in UTC: a 400, never an
    OverflowError (a 500)."""
    try:
        parsed = parse_time(moment.isoformat())
    except InvalidRequest:
        assert moment.utcoffset() != timedelta(0)
        return
    assert parsed == moment


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_out_of_range_in_utc_is_invalid(text: str) -> None:
    with pytest.raises(InvalidRequest, match="outside the years 1 to 9999"):
        parse_time(text)
