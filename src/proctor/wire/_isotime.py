"""ISO 8601 timestamps as integer nanoseconds, for the text formats of the wire layer.

subunit v1 ``time:`` lines, JUnit ``timestamp`` attributes and Proctor's JSON
lines all carry times as ISO 8601 text, while an :class:`~proctor.wire.event.Event`
holds integer nanoseconds since the Unix epoch. These helpers convert without
going through ``datetime`` (which would drop the last three digits) and without
the third-party ``iso8601`` package python-subunit uses, which would be a
runtime dependency for a few lines of parsing.
"""

from __future__ import annotations

import datetime as _dt
import re

from proctor.wire.event import NS_PER_SECOND

__all__ = ["V2_MAX_NS", "format_ns", "parse_ns"]

V2_MAX_NS = (2**32) * NS_PER_SECOND - 1
"""The last nanosecond subunit v2 can carry (its seconds field is a u32)."""

_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_SECONDS_PER_DAY = 86_400

# Extended (2024-01-02T03:04:05.678Z) and basic (20240102T030405Z) forms, a
# date alone, hours and minutes alone, a space or T between date and time, a
# decimal point or comma, and a zone of Z, +HH, +HHMM or +HH:MM. Times with
# no zone are taken as UTC (what python-subunit's iso8601 parser does).
_ISO = re.compile(
    r"""
    (?P<year>\d{4})-?(?P<month>\d{2})-?(?P<day>\d{2})
    (?:[Tt\ ]
        (?P<hour>\d{2})
        (?::?(?P<minute>\d{2})
            (?::?(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?
        )?
    )?
    \s*
    (?P<zone>[Zz]|(?P<sign>[+-])(?P<zh>\d{2})(?::?(?P<zm>\d{2}))?)?
    """,
    re.VERBOSE | re.ASCII,
)


def parse_ns(text: str) -> int | None:
    """Nanoseconds since the epoch for an ISO 8601 date-time, or None if ``text`` isn't one.

    Surrounding whitespace is ignored. Fractions keep up to nine digits (more
    are truncated). A value that names no real date or time (month 13, hour 24,
    an offset of a day or more) gives None rather than raising.
    """
    match = _ISO.fullmatch(text.strip())
    if match is None:
        return None
    try:
        date = _dt.date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        return None
    hour = int(match["hour"] or 0)
    minute = int(match["minute"] or 0)
    second = int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if match["sign"]:
        zh = int(match["zh"])
        zm = int(match["zm"] or 0)
        if zh > 23 or zm > 59:
            return None
        offset = (zh * 3600 + zm * 60) * (1 if match["sign"] == "+" else -1)
    fraction = match["fraction"] or ""
    nanos = int((fraction[:9]).ljust(9, "0")) if fraction else 0
    days = date.toordinal() - _EPOCH_ORDINAL
    seconds = days * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset
    return seconds * NS_PER_SECOND + nanos


def format_ns(ns: int, *, sep: str = "T", digits: int = 9, zone: str = "Z") -> str | None:
    """ISO 8601 text for nanoseconds since the epoch, in UTC.

    ``digits`` is how many fractional digits to write (0, 6 or 9 make sense;
    extra precision is truncated, never rounded, so a time never moves into the
    next second). ``zone`` is appended verbatim (``Z`` or ``+00:00``). Returns
    None for a time outside the years 1 to 9999, which ISO 8601 cannot write.
    """
    seconds, nanos = divmod(ns, NS_PER_SECOND)
    days, rest = divmod(seconds, _SECONDS_PER_DAY)
    ordinal = _EPOCH_ORDINAL + days
    if not 1 <= ordinal <= _dt.date.max.toordinal():
        return None
    date = _dt.date.fromordinal(ordinal)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    text = f"{date.year:04d}-{date.month:02d}-{date.day:02d}{sep}"
    text += f"{hour:02d}:{minute:02d}:{second:02d}"
    if digits > 0:
        text += "." + f"{nanos:09d}"[:digits]
    return text + zone
