"""Dates as the Upsun CLI shows and reads them.

Shown: in the local time zone (``TZ``, else the system's), in a PHP ``date()`` format —
``--date-fmt``, default ``c`` (``2025-12-14T16:41:05+01:00``), as Upsun's PropertyFormatter.
Read (``--start``): what PHP's ``strtotime`` reads that people type — any ISO 8601 form,
``now``, ``today``, ``midnight``, ``noon``, ``yesterday``, ``tomorrow``, relative amounts
(``-2 hours``, ``+1 day``, ``3 weeks ago``, ``last month``), combined (``yesterday 14:00``),
and ``@<epoch seconds>``; all in the local time zone unless the text gives an offset.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

DEFAULT_FORMAT = "c"

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _offset(moment: dt.datetime, colon: bool) -> str:
    seconds = int((moment.utcoffset() or dt.timedelta()).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def _suffix(day: int) -> str:
    if day in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _char(moment: dt.datetime, c: str) -> str:  # noqa: C901 - one branch per PHP format character
    m = moment
    table = {
        "d": lambda: f"{m.day:02d}", "D": lambda: _DAYS[m.weekday()][:3], "j": lambda: str(m.day),
        "l": lambda: _DAYS[m.weekday()], "N": lambda: str(m.isoweekday()), "S": lambda: _suffix(m.day),
        "w": lambda: str(m.isoweekday() % 7), "z": lambda: str(m.timetuple().tm_yday - 1),
        "W": lambda: f"{m.isocalendar()[1]:02d}", "F": lambda: _MONTHS[m.month - 1],
        "m": lambda: f"{m.month:02d}", "M": lambda: _MONTHS[m.month - 1][:3], "n": lambda: str(m.month),
        "t": lambda: str(calendar.monthrange(m.year, m.month)[1]), "L": lambda: "1" if calendar.isleap(m.year) else "0",
        "o": lambda: str(m.isocalendar()[0]), "Y": lambda: str(m.year), "y": lambda: f"{m.year % 100:02d}",
        "a": lambda: "am" if m.hour < 12 else "pm", "A": lambda: "AM" if m.hour < 12 else "PM",
        "g": lambda: str(m.hour % 12 or 12), "G": lambda: str(m.hour), "h": lambda: f"{m.hour % 12 or 12:02d}",
        "H": lambda: f"{m.hour:02d}", "i": lambda: f"{m.minute:02d}", "s": lambda: f"{m.second:02d}",
        "u": lambda: f"{m.microsecond:06d}", "v": lambda: f"{m.microsecond // 1000:03d}",
        "e": lambda: m.tzname() or _offset(m, True), "T": lambda: m.tzname() or _offset(m, True),
        "I": lambda: "1" if m.dst() else "0", "O": lambda: _offset(m, False), "P": lambda: _offset(m, True),
        "p": lambda: "Z" if not m.utcoffset() else _offset(m, True),
        "Z": lambda: str(int((m.utcoffset() or dt.timedelta()).total_seconds())),
        "c": lambda: m.replace(microsecond=0).isoformat(),
        "r": lambda: f"{_DAYS[m.weekday()][:3]}, {m.day:02d} {_MONTHS[m.month - 1][:3]} {m.year} "
                     f"{m:%H:%M:%S} {_offset(m, False)}",
        "U": lambda: str(int(m.timestamp())),
    }
    return table[c]() if c in table else c


def php_format(moment: dt.datetime, fmt: str) -> str:
    """``moment`` formatted as PHP's ``date(fmt)`` would (``\\`` escapes a character)."""
    out: list[str] = []
    escaped = False
    for c in fmt:
        if escaped:
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        else:
            out.append(_char(moment, c))
    return "".join(out)


def parse_iso(text: str) -> dt.datetime | None:
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()


def format_date(text: str | None, fmt: str | None = None) -> str:
    """A stored timestamp in the local time zone, in the PHP format ``fmt`` (default ``c``)."""
    if not text:
        return ""
    moment = parse_iso(str(text))
    if moment is None:
        return str(text)
    return php_format(moment.astimezone(), fmt or DEFAULT_FORMAT)


_UNITS = {
    "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "hour": "hours", "hours": "hours", "day": "days", "days": "days", "week": "weeks", "weeks": "weeks",
    "fortnight": "fortnights", "fortnights": "fortnights", "month": "months", "months": "months",
    "year": "years", "years": "years",
}
_RELATIVE = re.compile(r"([+-]?\s*\d+)\s*([a-z]+)")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def _shift(moment: dt.datetime, amount: int, unit: str) -> dt.datetime:
    if unit in ("months", "years"):
        months = moment.month - 1 + amount * (12 if unit == "years" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    if unit == "fortnights":
        return moment + dt.timedelta(weeks=2 * amount)
    return moment + dt.timedelta(**{unit: amount})


def parse_start(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``--start`` as a moment (aware). Raises ValueError naming the text when it cannot be read."""
    moment = parse_iso(text)
    if moment is not None:
        return moment
    raw = text.strip().lower()
    if re.fullmatch(r"@-?\d+(\.\d+)?", raw):
        return dt.datetime.fromtimestamp(float(raw[1:]), dt.timezone.utc)
    current = now if now is not None else dt.datetime.now().astimezone()
    midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
    bases = {"now": current, "today": midnight, "midnight": midnight, "noon": midnight.replace(hour=12),
             "yesterday": midnight - dt.timedelta(days=1), "tomorrow": midnight + dt.timedelta(days=1)}
    tokens = raw.replace(",", " ").split()
    if not tokens:
        raise ValueError(f"not a date: {text!r}")
    result = current
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in bases:
            result = bases[token]
            i += 1
        elif _TIME.match(token):
            hour, minute, second = _TIME.match(token).groups()  # type: ignore[union-attr]
            result = result.replace(hour=int(hour), minute=int(minute), second=int(second or 0), microsecond=0)
            i += 1
        elif token in ("last", "next") and i + 1 < len(tokens) and tokens[i + 1] in _UNITS:
            result = _shift(result, -1 if token == "last" else 1, _UNITS[tokens[i + 1]])
            i += 2
        else:
            rest = " ".join(tokens[i:])
            match = _RELATIVE.match(rest)
            if not match or match.group(2) not in _UNITS:
                raise ValueError(f"not a date: {text!r}")
            amount = int(match.group(1).replace(" ", ""))
            consumed = len(match.group(0).split())
            i += consumed
            if i < len(tokens) and tokens[i] == "ago":
                amount = -amount
                i += 1
            result = _shift(result, amount, _UNITS[match.group(2)])
    return result
