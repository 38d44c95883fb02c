"""The venue's trading days: when each ends on the venue host's clock, in calendar or fixed-length
days, and the config that sets them."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.domain.venue_calendar import TradingCalendar, parse_end_of_day
from cluster.config import ConfigError, VenueConfig, parse_config


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def day_of(date: str) -> int:
    return (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days


def test_a_calendar_day_ends_at_the_end_of_day_time_utc() -> None:
    calendar = TradingCalendar("21:00")
    assert calendar.closes_at(day_of("2024-05-01")) == at("2024-05-01T21:00:00")
    assert calendar.name(day_of("2024-05-01")) == "2024-05-01"


@pytest.mark.parametrize(("now", "last_closed"), [
    ("2024-05-01T20:59:59", "2024-04-30"),
    ("2024-05-01T21:00:00", "2024-05-01"),
    ("2024-05-02T03:00:00", "2024-05-01"),
])
def test_the_last_closed_day_is_the_latest_whose_end_has_passed(now: str, last_closed: str) -> None:
    calendar = TradingCalendar("21:00")
    assert calendar.last_closed(at(now)) == day_of(last_closed)
    assert calendar.in_progress(at(now)) == day_of(last_closed) + 1


def test_fixed_length_days_end_every_day_length_after_the_start() -> None:
    calendar = TradingCalendar("21:00", day_length=10.0, started=1000.0, base=4)
    assert [calendar.closes_at(d) for d in (5, 6)] == [1010.0, 1020.0]
    assert [calendar.last_closed(t) for t in (1000.0, 1009.9, 1010.0, 1025.0)] == [4, 4, 5, 6]
    assert calendar.name(5) == "day 5"


@pytest.mark.parametrize("text", ["24:00", "9:30", "21:60", "2100", "", "21:00:00"])
def test_an_end_of_day_that_is_not_hh_mm_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_end_of_day(text)


def test_the_config_defaults_to_an_end_of_day_at_21_00_utc_and_snapshots_every_5000_records_or_minute() -> None:
    vcfg = VenueConfig()
    assert (vcfg.end_of_day, vcfg.day_length, vcfg.snapshot_every, vcfg.snapshot_interval) == ("21:00", None, 5000,
                                                                                               60.0)


def test_the_config_names_a_bad_end_of_day_or_day_length() -> None:
    with pytest.raises(ConfigError, match=r"venues\.SIM\.end_of_day"):
        parse_config({"venues": {"SIM": {"end_of_day": "25:00"}}})
    with pytest.raises(ConfigError, match=r"venues\.SIM\.day_length"):
        parse_config({"venues": {"SIM": {"day_length": "0s"}}})


def test_the_config_takes_a_day_length_as_a_duration() -> None:
    assert parse_config({"venues": {"SIM": {"day_length": "2m"}}}).venues["SIM"].day_length == 120.0
