"""Liveness: alive, hung (no heartbeats) and stalled (heartbeats, pending work, no progress), at each boundary."""

from __future__ import annotations

import pytest

from supervision.health import Liveness


def beating(until: float, interval: float = 0.5, progress: int | None = None, pending: int = 0,
            live: Liveness | None = None) -> Liveness:
    """Beats every `interval` from 0 to `until`; progress advances each beat unless fixed."""
    live = live or Liveness(interval, misses=3)
    steps = int(until // interval)
    for i in range(steps + 1):
        live.beat(i * interval, i if progress is None else progress, pending)
    return live


@pytest.mark.parametrize(("interval", "misses"), [(0.0, 3), (-1.0, 3), (float("inf"), 3), (0.5, 0)])
def test_nonsense_liveness_settings_are_rejected(interval: float, misses: int) -> None:
    with pytest.raises(ValueError):
        Liveness(interval, misses)


def test_a_child_that_never_beat_and_has_no_start_time_is_not_judged() -> None:
    assert Liveness(0.5).verdict(1e9) == "alive"


@pytest.mark.parametrize(("now", "verdict"), [(11.49, "alive"), (11.5, "hung")])
def test_a_child_that_never_beats_is_hung_misses_intervals_after_it_started(now: float, verdict: str) -> None:
    assert Liveness(0.5, 3, started_at=10.0).verdict(now) == verdict


@pytest.mark.parametrize(("now", "verdict"), [(2.0, "alive"), (3.49, "alive"), (3.5, "hung"), (60.0, "hung")])
def test_a_child_is_hung_once_no_heartbeat_came_for_misses_intervals(now: float, verdict: str) -> None:
    live = beating(until=2.0)
    assert live.verdict(now) == verdict


def test_a_heartbeat_makes_a_hung_child_alive_again() -> None:
    live = beating(until=2.0)
    assert live.verdict(10.0) == "hung"
    live.beat(10.0, 99, 0)
    assert live.verdict(10.0) == "alive"


def test_a_busy_child_whose_progress_advances_is_alive() -> None:
    assert beating(until=10.0, pending=5).verdict(10.0) == "alive"


@pytest.mark.parametrize(("now", "verdict"), [(1.49, "alive"), (1.5, "stalled"), (2.0, "stalled")])
def test_a_beating_child_with_pending_work_and_no_progress_is_stalled_after_misses_intervals(
        now: float, verdict: str) -> None:
    live = beating(until=now, progress=7, pending=3)
    assert live.verdict(now) == verdict


def test_an_idle_child_with_no_progress_is_alive() -> None:
    assert beating(until=10.0, progress=7, pending=0).verdict(10.0) == "alive"


def test_the_stall_clock_starts_when_work_arrives_not_when_progress_last_advanced() -> None:
    live = beating(until=10.0, progress=7, pending=0)  # idle for ten seconds
    live.beat(10.5, 7, 1)
    live.beat(11.0, 7, 1)
    assert live.verdict(11.0) == "alive"
    live.beat(11.5, 7, 1)
    live.beat(12.0, 7, 1)
    assert live.verdict(12.0) == "stalled"


def test_progress_resumes_a_stalled_child() -> None:
    live = beating(until=2.0, progress=7, pending=3)
    assert live.verdict(2.0) == "stalled"
    live.beat(2.5, 8, 3)
    assert live.verdict(2.5) == "alive"


def test_a_counter_that_starts_over_counts_as_progress() -> None:
    live = beating(until=1.0, progress=500, pending=3)
    live.beat(1.5, 0, 3)
    assert live.verdict(1.5) == "alive"


def test_a_silent_child_is_hung_rather_than_stalled() -> None:
    live = beating(until=2.0, progress=7, pending=3)
    assert live.verdict(4.0) == "hung"


def test_a_late_heartbeat_older_than_the_last_one_is_ignored() -> None:
    live = beating(until=2.0)
    live.beat(0.1, 0, 100)
    assert (live.last_beat, live.verdict(2.0)) == (2.0, "alive")


def test_reset_forgets_the_beats_and_starts_the_hung_clock_at_the_restart() -> None:
    live = beating(until=2.0, progress=7, pending=3)
    live.reset(20.0)
    assert (live.last_beat, live.verdict(21.0), live.verdict(21.5)) == (None, "alive", "hung")


def test_deadline_is_misses_times_the_interval() -> None:
    assert Liveness(0.25, misses=4).deadline == 1.0
