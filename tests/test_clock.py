"""The stored time form: fixed width, UTC, microseconds, for any aware time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

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
