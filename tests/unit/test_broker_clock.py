"""The broker's time from its stamps and our monotonic clock: skew cancels, the fastest delivery wins."""

from __future__ import annotations

from actors.runtime.broker_clock import BrokerClock

S = 10**9
SKEW = 3600 * S  # the broker's clock is an hour ahead of our monotonic one, and nothing depends on it


def test_nothing_is_known_before_the_first_stamp() -> None:
    assert BrokerClock().age_s(SKEW, 5 * S) is None


def test_a_message_stored_ten_seconds_ago_is_ten_seconds_old_whatever_the_skew() -> None:
    clock = BrokerClock()
    clock.observe(SKEW + 100 * S, 100 * S)  # handled as soon as it was stored
    assert clock.age_s(SKEW + 90 * S, 100 * S) == 10.0


def test_a_late_delivery_does_not_make_the_broker_seem_slower() -> None:
    clock = BrokerClock()
    clock.observe(SKEW + 100 * S, 100 * S)
    clock.observe(SKEW + 101 * S, 130 * S)  # worked off a backlog half a minute late
    assert clock.age_s(SKEW + 130 * S, 130 * S) == 0.0


def test_samples_older_than_the_window_are_forgotten() -> None:
    clock = BrokerClock(window_buckets=2)
    clock.observe(SKEW + 0 * S, 0)  # an early, very fast sample
    clock.observe(SKEW + 300 * S, 301 * S)  # now every delivery takes a second
    assert clock.age_s(SKEW + 290 * S, 301 * S) == 10.0  # 11.0 if the early sample still counted
