"""The venue's trading days: which day is in progress and when it ends, on one host's wall clock.

Pure: no clock of its own (every method takes `now`, epoch seconds from the venue host), no Ray or
NATS. A trading day is a number that grows by one a day; the venue journals the day each end of day
closes (`ExpireCommand.day`), so a replay closes the same days and a restarted venue never closes a
day twice.

Two ways to count days:

- the calendar (`day_length` None): day ``d`` is the UTC date ``d`` days after 1970-01-01, and it
  ends at `end_of_day` (``HH:MM``, UTC) of that date;
- fixed-length days (`day_length` seconds, for tests and soak runs): the venue started at `started`
  with `base` the last day it had closed; day ``base + k`` ends ``k * day_length`` seconds later.
"""

from __future__ import annotations

import datetime as dt
import math
import re

__all__ = ["SECONDS_PER_DAY", "TradingCalendar", "parse_end_of_day"]

SECONDS_PER_DAY = 86400
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_end_of_day(text: str) -> int:
    """Seconds after midnight UTC of an ``HH:MM`` time (00:00 to 23:59). Raises ValueError otherwise."""
    match = _HH_MM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"end of day must be HH:MM (UTC, 00:00 to 23:59), not {text!r}")
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60


class TradingCalendar:
    """When each trading day ends, and which is the latest that has ended at a given time."""

    def __init__(self, end_of_day: str = "21:00", day_length: float | None = None, started: float = 0.0,
                 base: int = 0) -> None:
        if day_length is not None and not (math.isfinite(day_length) and day_length > 0):
            raise ValueError(f"day_length must be a positive number of seconds, not {day_length!r}")
        self.end_of_day = end_of_day
        self._eod = parse_end_of_day(end_of_day)
        self.day_length = day_length
        self.started = started
        self.base = base

    def closes_at(self, day: int) -> float:
        """Epoch seconds at which trading day `day` ends."""
        if self.day_length is None:
            return float(day * SECONDS_PER_DAY + self._eod)
        return self.started + (day - self.base) * self.day_length

    def last_closed(self, now: float) -> int:
        """The latest trading day whose end is at or before `now`."""
        if self.day_length is None:
            return math.floor((now - self._eod) / SECONDS_PER_DAY)
        return self.base + math.floor((now - self.started) / self.day_length)

    def in_progress(self, now: float) -> int:
        """The trading day in progress at `now` (the next to end)."""
        return self.last_closed(now) + 1

    def name(self, day: int) -> str:
        """A day for people: its date on the calendar, else its number."""
        if self.day_length is None:
            return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        return f"day {day}"
