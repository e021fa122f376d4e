"""Durations as Vault reads and writes them: Go's ``time.Duration`` text (``30m0s``,
``1h0m0s``, ``30s``, ``0s``) out; that, or a number of seconds, in."""

from __future__ import annotations

import re

from secrets_ledger.domain.errors import InvalidRequest

_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_SECONDS = 100 * 365 * 24 * 3600


def parse_duration(value: object) -> int:
    """Whole seconds of a duration given as text (``1h30m``, ``45s``, ``90``) or a number."""
    if isinstance(value, bool):
        raise InvalidRequest("invalid duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            seconds = float(text)
        else:
            parts = _PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                raise InvalidRequest(f"invalid duration {value!r}"[:80])
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise InvalidRequest("invalid duration")
    if not 0 <= seconds <= MAX_SECONDS:
        raise InvalidRequest("duration out of range")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """Go's form: hours, minutes and seconds from the largest present (``30m0s``)."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
