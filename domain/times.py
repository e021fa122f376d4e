"""Time as the ledger stores it: UTC, microseconds, one sortable text form."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from secrets_ledger.domain.errors import InvalidRequest


def utc_now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1 << 16)
def format_time(moment: datetime) -> str:
    """Fixed-width text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so that text order is time order
    on both backends. (Cached: the projector formats each event's time once per view.
    ``isoformat`` with six fraction digits, not ``strftime``: a third of the time.)"""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.microsecond:  # isoformat() has the six digits then, and costs a third less
        return moment.isoformat()[:-6] + "Z"
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """Parses an RFC 3339 time given by a client; a time without a zone is refused."""
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, TypeError):
        raise InvalidRequest("times are RFC 3339, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise InvalidRequest("times must carry a zone (Z or +hh:mm)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00 is in the year 10000 in UTC
        raise InvalidRequest("that time is outside the years 1 to 9999 in UTC") from None


def stored_time(text: str) -> str:
    """A client's RFC 3339 time in the stored text form (comparable with stored times)."""
    return format_time(parse_time(text))
