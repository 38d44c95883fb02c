"""The venue's place in the topology: its input journal has no age limit (the venue trims it up to a
snapshot), and the broker's duplicate window: as long as the retention on the order path, short on the
journal (whose copies can only come from a second writer), legal for every stream."""

from __future__ import annotations

import pytest

from cluster.config import SystemConfig, parse_config
from cluster.topology import duplicate_window, stream_max_age
from messages import subjects


def config(**nats: object) -> SystemConfig:
    return parse_config({"nats": nats})


def test_the_venue_journal_has_no_max_age_and_every_other_stream_keeps_the_configured_one() -> None:
    cfg = config(max_age="7d")
    assert stream_max_age(cfg, "VENUE_INPUT") == 0.0
    assert {stream_max_age(cfg, s.name) for s in subjects.STREAMS if s.name != "VENUE_INPUT"} == {7 * 86400.0}


@pytest.mark.parametrize("nats", [{"max_age": "7d"}, {"max_age": "7d", "duplicate_window": "1h"}, {"max_age": "0s"}])
def test_the_venue_journals_duplicate_window_is_short_it_only_catches_a_second_writer(nats: dict) -> None:
    assert duplicate_window(config(**nats), "VENUE_INPUT") == 120.0


@pytest.mark.parametrize(("nats", "expected"), [
    ({"max_age": "7d"}, 7 * 86400.0),
    ({"max_age": "7d", "duplicate_window": "1h"}, 3600.0),
    ({"max_age": "1h", "duplicate_window": "1d"}, 3600.0),
])
def test_an_order_path_streams_duplicate_window_is_the_configured_window_within_max_age(nats: dict,
                                                                                        expected: float) -> None:
    assert duplicate_window(config(**nats), "EXECUTIONS") == expected


@pytest.mark.parametrize("nats", [{"max_age": "1h", "duplicate_window": "1d"}, {"max_age": "7d"},
                                  {"max_age": "2m", "duplicate_window": "10m"}])
def test_no_streams_duplicate_window_exceeds_its_own_max_age(nats: dict) -> None:
    cfg = config(**nats)
    for spec in subjects.STREAMS:
        max_age = stream_max_age(cfg, spec.name)
        assert not max_age or duplicate_window(cfg, spec.name) <= max_age
