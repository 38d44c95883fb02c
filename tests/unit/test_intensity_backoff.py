"""The existing restart intensity (MaxR in MaxT) and restart backoff, at their boundaries."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervision.backoff import Backoff
from supervision.intensity import RestartIntensity
from supervision.settings import BackoffConfig


# ---- intensity ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("max_restarts", "period"), [(-1, 5.0), (3, 0.0), (3, -1.0)])
def test_nonsense_intensity_is_rejected(max_restarts: int, period: float) -> None:
    with pytest.raises(ValueError):
        RestartIntensity(max_restarts, period)


def test_restarts_up_to_the_intensity_are_allowed_and_the_next_is_refused() -> None:
    intensity = RestartIntensity(3, 5.0)
    assert [intensity.allow(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (4.999, False),  # the restart at 0.0 is still inside the period
        (5.0, True),  # a restart exactly `period` ago has left the window
        (7.0, True),
    ],
)
def test_a_restart_leaves_the_window_exactly_period_seconds_later(now: float, allowed: bool) -> None:
    intensity = RestartIntensity(3, 5.0)
    for t in (0.0, 1.0, 2.0):
        assert intensity.allow(t)
    assert intensity.allow(now) is allowed


def test_a_refused_restart_is_not_counted() -> None:
    intensity = RestartIntensity(1, 5.0)
    assert intensity.allow(0.0)
    assert not intensity.allow(1.0)
    assert not intensity.allow(4.0)
    assert intensity.count(4.0) == 1
    assert intensity.allow(5.0)  # only the restart at 0.0 was counted


@pytest.mark.parametrize(("now", "count"), [(2.0, 3), (4.999, 3), (5.0, 2), (6.999, 1), (7.0, 0)])
def test_count_is_the_restarts_inside_the_window_ending_now(now: float, count: int) -> None:
    intensity = RestartIntensity(5, 5.0)
    for t in (0.0, 1.0, 2.0):
        intensity.allow(t)
    assert intensity.count(now) == count


def test_an_intensity_of_zero_allows_no_restart() -> None:
    intensity = RestartIntensity(0, 5.0)
    assert not intensity.allow(0.0)
    assert not intensity.allow(100.0)


@given(
    max_restarts=st.integers(0, 6),
    period=st.floats(0.1, 20.0),
    gaps=st.lists(st.floats(0.0, 5.0), max_size=60),
)
def test_restarts_allowed_inside_any_one_period_never_exceed_the_intensity(
        max_restarts: int, period: float, gaps: list[float]) -> None:
    intensity = RestartIntensity(max_restarts, period)
    now, allowed = 0.0, []
    for gap in gaps:
        now += gap
        if intensity.allow(now):
            allowed.append(now)
    # the most crowded window of length `period` ends at an allowed restart
    for end in allowed:
        assert sum(1 for t in allowed if end - period < t <= end) <= max_restarts


# ---- backoff -----------------------------------------------------------------------------------
def cfg(**kw: float) -> BackoffConfig:
    return BackoffConfig(**{"min": 0.05, "max": 5.0, "jitter": 0.0, "reset_after": 30.0, **kw})


def test_backoff_doubles_from_min_to_max_and_stays_there() -> None:
    backoff = Backoff(cfg(), random.Random(1))
    backoff.started(0.0)
    delays = [backoff.next_delay(1.0) for _ in range(10)]
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def test_backoff_counts_its_attempts() -> None:
    backoff = Backoff(cfg(), random.Random(1))
    for _ in range(3):
        backoff.next_delay(0.0)
    assert backoff.attempt == 3


@given(seed=st.integers(0, 2**32), jitter=st.floats(0.0, 1.0), attempts=st.integers(1, 15))
def test_jitter_stays_within_the_configured_fraction_of_the_delay(seed: int, jitter: float, attempts: int) -> None:
    backoff = Backoff(cfg(jitter=jitter), random.Random(seed))
    for attempt in range(attempts):
        base = min(5.0, 0.05 * 2**attempt)
        delay = backoff.next_delay(0.0)
        assert base * (1 - jitter) - 1e-12 <= delay <= base * (1 + jitter) + 1e-12
        assert 0.0 <= delay <= 5.0


def test_jitter_spreads_the_delays() -> None:
    rng = random.Random(7)
    delays = {Backoff(cfg(jitter=0.2), rng).next_delay(0.0) for _ in range(20)}
    assert len(delays) > 1


@pytest.mark.parametrize(("failed_at", "delay"), [(29.999, 0.4), (30.0, 0.05), (100.0, 0.05)])
def test_backoff_starts_over_after_reset_after_seconds_of_stable_running(failed_at: float, delay: float) -> None:
    backoff = Backoff(cfg(), random.Random(1))
    backoff.started(0.0)
    for _ in range(3):
        backoff.next_delay(0.0)  # 0.05, 0.1, 0.2
    assert backoff.next_delay(failed_at) == pytest.approx(delay)


def test_backoff_without_a_recorded_start_never_resets() -> None:
    backoff = Backoff(cfg(), random.Random(1))
    backoff.next_delay(0.0)
    assert backoff.next_delay(1e6) == pytest.approx(0.1)


def test_a_short_run_after_a_restart_does_not_reset_the_backoff() -> None:
    backoff = Backoff(cfg(), random.Random(1))
    backoff.started(0.0)
    backoff.next_delay(100.0)  # ran 100s: resets, 0.05
    backoff.started(100.0)
    assert backoff.next_delay(101.0) == pytest.approx(0.1)


def test_backoff_stays_at_max_however_many_attempts_have_failed() -> None:
    backoff = Backoff(cfg(), random.Random(1))
    for _ in range(1100):
        delay = backoff.next_delay(0.0)
    assert delay == 5.0
