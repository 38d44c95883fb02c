"""The venue circuit breaker: every transition, each trip condition's boundary, overrides, persistence."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.breaker import (
    TIME_BUCKETS,
    BreakerSettings,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def make(now: float = 0.0, **kw: Any) -> CircuitBreaker:
    return CircuitBreaker("SIM", BreakerSettings(**kw), now)


def feed(b: CircuitBreaker, outcomes: str, now: float = 0.0) -> None:
    """'s' success, 'f' failure, 't' timeout; each call is let through by allow() first."""
    for outcome in outcomes:
        assert b.allow(now)
        if outcome == "s":
            b.record_success(now, 0.01)
        elif outcome == "f":
            b.record_failure(now, 0.01, "rejected")
        else:
            b.record_timeout(now)


def recorder(b: CircuitBreaker) -> list[BreakerTransition]:
    seen: list[BreakerTransition] = []
    b.add_listener(seen.append)
    return seen


def tripped(now: float = 0.0, **kw: Any) -> CircuitBreaker:
    """A breaker that just opened at `now` on consecutive failures."""
    b = make(now, **{"consecutive_failures": 1, **kw})
    feed(b, "f", now)
    assert b.state is OPEN
    return b


def half_open(**kw: Any) -> CircuitBreaker:
    b = tripped(**kw)
    assert b.open_until is not None
    assert b.allow(b.open_until)
    assert b.state is HALF_OPEN
    return b


# ---- settings ------------------------------------------------------------------------------------
def test_default_settings_match_the_design_config() -> None:
    s = BreakerSettings()
    assert (s.failure_rate, s.window, s.min_calls, s.call_timeout, s.open_timeout, s.max_open_timeout,
            s.half_open_calls) == (0.5, 20, 5, 2.0, 1.0, 30.0, 1)


@pytest.mark.parametrize(
    "kw",
    [
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window": 0},
        {"window_seconds": 0.0},
        {"window_seconds": float("inf")},
        {"min_calls": 0},
        {"min_calls": 21, "window": 20},
        {"consecutive_failures": 0},
        {"slow_call_s": 0.0},
        {"slow_call_s": 2.0, "call_timeout": 2.0},
        {"slow_call_rate": 0.0},
        {"slow_call_rate": 1.01},
        {"call_timeout": 0.0},
        {"open_timeout": -1.0},
        {"open_timeout": float("nan")},
        {"max_open_timeout": 0.5, "open_timeout": 1.0},
        {"half_open_calls": 0},
    ],
    ids=repr,
)
def test_nonsense_settings_are_rejected(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid breaker settings"):
        BreakerSettings(**kw)


def test_min_calls_may_exceed_the_count_window_size_when_the_window_is_time_based() -> None:
    assert BreakerSettings(window=5, min_calls=50, window_seconds=10.0).min_calls == 50


# ---- closed ------------------------------------------------------------------------------------
def test_a_new_breaker_is_closed_and_lets_calls_through() -> None:
    b = make()
    assert (b.state, b.open_until, b.forced) == (CLOSED, None, False)
    assert b.allow(0.0)


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        ("ffff", CLOSED),  # every call failed, but fewer than min_calls (5)
        ("fffff", OPEN),  # the fifth call: min_calls reached, 100% >= 50%
        ("ssff", CLOSED),
        ("sssff", CLOSED),  # 40% < 50%
        ("ssfff", OPEN),  # 60% >= 50%
        ("sssssfffff", OPEN),  # exactly 50% over 10 calls opens (the rate is compared with >=)
        ("sssssssfff", CLOSED),  # 30%
    ],
)
def test_closed_breaker_opens_on_failure_rate_only_from_min_calls_on(outcomes: str, state: BreakerState) -> None:
    b = make(min_calls=5, failure_rate=0.5, window=10)
    feed(b, outcomes)
    assert b.state is state


def test_trip_on_failure_rate_opens_for_the_open_timeout_and_says_why() -> None:
    b = make(min_calls=2, open_timeout=3.0)
    seen = recorder(b)
    feed(b, "ff", now=10.0)
    assert b.open_until == 13.0
    assert seen[0].reason.startswith("failure rate 100% >= 50% over 2 calls")


def test_count_window_forgets_calls_older_than_the_last_window_calls() -> None:
    b = make(window=4, min_calls=4, failure_rate=0.5)
    feed(b, "fssssssf")  # the first failure has left the window: 1 of 4
    assert b.state is CLOSED
    feed(b, "f")  # s s f f: 50%, though only 3 of all 9 calls failed
    assert b.state is OPEN


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [("fff", OPEN), ("ffsff", CLOSED), ("sssssfff", OPEN), ("tft", OPEN)],
)
def test_consecutive_failures_open_the_breaker_regardless_of_rate(outcomes: str, state: BreakerState) -> None:
    b = make(consecutive_failures=3, window=20, min_calls=20, failure_rate=1.0)
    feed(b, outcomes)
    assert b.state is state


def test_consecutive_failure_trip_names_the_count_and_the_last_reason() -> None:
    b = make(consecutive_failures=2)
    seen = recorder(b)
    feed(b, "ff")
    assert seen[-1].reason == "2 consecutive failures (last: rejected)"


def test_time_based_window_forgets_calls_older_than_window_seconds() -> None:
    b = make(window_seconds=10.0, min_calls=4)
    feed(b, "fff", now=0.0)
    assert b.stats(9.0).calls == 3
    assert b.stats(10.0).calls == 0
    feed(b, "f", now=10.0)  # 1 call in the window, not 4 failures of 4
    assert b.state is CLOSED


def test_time_based_window_opens_when_enough_recent_calls_fail() -> None:
    b = make(window_seconds=10.0, min_calls=4)
    feed(b, "ff", now=0.0)
    feed(b, "ff", now=9.0)
    assert b.state is OPEN


@pytest.mark.parametrize(
    ("recorded_at", "checked_at", "calls"),
    [
        (0.0, 9.99, 1),
        (0.0, 10.0, 0),
        (0.49, 9.99, 1),  # a call is kept at least (B-1)/B of the window (B = TIME_BUCKETS buckets)
        (0.49, 10.0, 0),  # and never longer than the window
        (100.0, 110.0, 0),
    ],
)
def test_time_based_window_keeps_a_call_for_about_window_seconds(recorded_at: float, checked_at: float,
                                                                   calls: int) -> None:
    assert TIME_BUCKETS == 20
    b = make(window_seconds=10.0)
    feed(b, "s", now=recorded_at)
    assert b.stats(checked_at).calls == calls


def test_time_based_window_holds_more_calls_than_the_count_window_size() -> None:
    b = make(window_seconds=10.0, window=5, min_calls=5)
    feed(b, "s" * 100, now=1.0)
    assert b.stats(1.0).calls == 100


@pytest.mark.parametrize(
    ("durations", "state"),
    [
        ([1.0, 1.0, 1.0, 1.0], CLOSED),  # fewer than min_calls
        ([1.0, 1.0, 1.0, 0.1, 0.1], OPEN),  # 60% slow >= 60%
        ([1.0, 1.0, 0.1, 0.1, 0.1], CLOSED),  # 40% slow
        ([0.5, 0.5, 0.5, 0.5, 0.5], CLOSED),  # exactly slow_call_s is not slower than it
    ],
)
def test_slow_calls_open_the_breaker_at_the_slow_call_rate(durations: list[float], state: BreakerState) -> None:
    b = make(slow_call_s=0.5, slow_call_rate=0.6, min_calls=5)
    for d in durations:
        assert b.allow(0.0)
        b.record_success(0.0, d)
    assert b.state is state


def test_slow_failures_count_as_slow_calls() -> None:
    b = make(slow_call_s=0.5, min_calls=5)
    b.record_success(0.0, 1.0)
    b.record_failure(0.0, 1.0)
    assert b.stats(0.0).slow == 2


def test_durations_do_not_matter_without_a_slow_call_threshold() -> None:
    b = make(min_calls=5)
    for _ in range(10):
        b.record_success(0.0, 1.9)
    assert (b.state, b.stats(0.0).slow) == (CLOSED, 0)


def test_timeouts_count_as_failures() -> None:
    b = make(min_calls=5)
    seen = recorder(b)
    feed(b, "ttttt")
    assert b.state is OPEN
    assert "timeout" in seen[0].reason


def test_a_success_slower_than_call_timeout_counts_as_a_timeout_failure() -> None:
    b = make(min_calls=5, call_timeout=2.0)
    b.record_success(0.0, 2.5)
    b.record_success(0.0, 2.0)
    assert b.stats(0.0).failures == 1


# ---- open and half-open ------------------------------------------------------------------------
def test_open_breaker_refuses_calls_until_the_open_timeout_has_elapsed() -> None:
    b = tripped(now=5.0, open_timeout=1.0)
    assert not b.allow(5.999)
    assert b.state is OPEN


def test_open_breaker_turns_half_open_and_lets_a_trial_through_once_the_open_timeout_elapses() -> None:
    b = tripped(now=5.0, open_timeout=1.0)
    assert b.allow(6.0)
    assert (b.state, b.open_until) == (HALF_OPEN, None)


def test_half_open_breaker_closes_when_its_trial_succeeds() -> None:
    b = half_open()
    b.record_success(1.0, 0.01)
    assert b.state is CLOSED
    assert b.allow(1.0)


def test_half_open_breaker_reopens_with_a_doubled_timeout_when_its_trial_fails() -> None:
    b = half_open(open_timeout=1.0)
    b.record_failure(1.5, reason="rejected")
    assert (b.state, b.current_open_timeout, b.open_until) == (OPEN, 2.0, 3.5)


def test_open_timeout_doubles_on_each_failed_trial_up_to_the_max() -> None:
    b = tripped(open_timeout=1.0, max_open_timeout=5.0)
    timeouts = [b.current_open_timeout]
    for _ in range(5):
        assert b.open_until is not None
        now = b.open_until
        assert b.allow(now)
        b.record_failure(now)
        timeouts.append(b.current_open_timeout)
        assert b.open_until == now + b.current_open_timeout
    assert timeouts == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_a_successful_close_resets_the_open_timeout() -> None:
    b = half_open(open_timeout=1.0)
    b.record_failure(1.0)
    assert b.current_open_timeout == 2.0
    assert b.allow(3.0)
    b.record_success(3.0)
    assert (b.state, b.current_open_timeout) == (CLOSED, 1.0)
    feed(b, "f", now=10.0)
    assert b.open_until == 11.0


def test_half_open_breaker_closes_only_after_half_open_calls_trials_succeed() -> None:
    b = half_open(half_open_calls=3)
    assert b.allow(1.0)
    assert b.allow(1.0)
    for _ in range(2):
        b.record_success(1.0)
        assert b.state is HALF_OPEN
    b.record_success(1.0)
    assert b.state is CLOSED


def test_half_open_breaker_lets_no_more_than_half_open_calls_trials_through() -> None:
    b = half_open(half_open_calls=2)  # one trial already let through
    assert b.allow(1.0)
    assert not b.allow(1.0)
    b.record_success(1.0)
    assert not b.allow(1.0)  # the trial finished, but the period's trials are used up


def test_half_open_breaker_reopens_on_the_first_failed_trial_after_some_succeeded() -> None:
    b = half_open(half_open_calls=3)
    assert b.allow(1.0)
    b.record_success(1.0)
    b.record_failure(1.0)
    assert b.state is OPEN


def test_half_open_breaker_reopens_when_a_trial_is_slow() -> None:
    b = half_open(slow_call_s=0.5)
    b.record_success(1.0, 0.8)
    assert b.state is OPEN


def test_half_open_breaker_reopens_when_a_trial_times_out() -> None:
    b = half_open()
    b.record_timeout(3.0)
    assert (b.state, b.current_open_timeout) == (OPEN, 2.0)


def test_a_trial_that_never_reports_counts_as_timed_out_after_call_timeout() -> None:
    b = half_open(call_timeout=2.0, half_open_calls=2)  # the trial started at 1.0
    assert b.allow(2.0)
    assert not b.allow(2.999)
    assert b.state is HALF_OPEN
    assert not b.allow(3.0)
    assert (b.state, b.open_until) == (OPEN, 5.0)


def test_outcomes_reported_while_open_are_ignored() -> None:
    b = tripped()
    before = b.to_dict()
    b.record_failure(0.1)
    b.record_success(0.1)
    b.record_timeout(0.1)
    assert b.to_dict() == before


def test_outcomes_reported_in_half_open_with_no_trial_in_flight_are_ignored() -> None:
    b = half_open(half_open_calls=2)
    b.record_success(1.0)  # the trial
    b.record_failure(1.0)  # a call let through before the breaker opened
    assert b.state is HALF_OPEN


# ---- operator overrides ------------------------------------------------------------------------
@pytest.mark.parametrize("build", [make, tripped, half_open], ids=["closed", "open", "half_open"])
def test_force_open_pins_the_breaker_open_past_any_timeout(build: Callable[..., CircuitBreaker]) -> None:
    b = build()
    b.force_open(2.0, "venue maintenance")
    assert (b.state, b.forced, b.open_until) == (OPEN, True, None)
    assert not b.allow(1e9)
    b.record_success(3.0)
    assert b.state is OPEN


def test_force_open_of_a_closed_breaker_names_the_operator_reason() -> None:
    b = make()
    seen = recorder(b)
    b.force_open(2.0, "venue maintenance")
    assert [(t.old, t.new, t.at, t.reason) for t in seen] == [(CLOSED, OPEN, 2.0, "forced open: venue maintenance")]


def test_force_open_of_an_open_breaker_pins_it_without_a_transition() -> None:
    b = tripped()
    seen = recorder(b)
    b.force_open(0.5)
    assert seen == []
    assert b.forced


@pytest.mark.parametrize("build", [tripped, half_open], ids=["open", "half_open"])
def test_force_close_closes_and_resets_the_open_timeout(build: Callable[..., CircuitBreaker]) -> None:
    b = build()
    b.force_open(1.0)
    b.force_close(2.0)
    assert (b.state, b.forced, b.open_until, b.current_open_timeout) == (CLOSED, False, None, 1.0)
    assert b.allow(2.0)


def test_force_close_of_a_closed_breaker_forgets_its_window_without_a_transition() -> None:
    b = make(consecutive_failures=3)
    feed(b, "ff")
    seen = recorder(b)
    b.force_close(1.0)
    assert (b.stats(1.0).calls, b.consecutive_failures, seen) == (0, 0, [])


# ---- listeners ---------------------------------------------------------------------------------
def test_listeners_receive_every_transition_in_order() -> None:
    b = make(consecutive_failures=1, open_timeout=1.0)
    seen = recorder(b)
    feed(b, "f", now=0.0)  # closed -> open
    assert b.allow(1.0)  # open -> half-open
    b.record_failure(1.0)  # half-open -> open (2s)
    assert b.allow(3.0)  # open -> half-open
    b.record_success(3.0)  # half-open -> closed
    b.force_open(4.0, "halt")
    b.force_close(5.0)
    assert [(t.name, t.old, t.new, t.at) for t in seen] == [
        ("SIM", CLOSED, OPEN, 0.0),
        ("SIM", OPEN, HALF_OPEN, 1.0),
        ("SIM", HALF_OPEN, OPEN, 1.0),
        ("SIM", OPEN, HALF_OPEN, 3.0),
        ("SIM", HALF_OPEN, CLOSED, 3.0),
        ("SIM", CLOSED, OPEN, 4.0),
        ("SIM", OPEN, CLOSED, 5.0),
    ]


def test_listeners_are_called_in_the_order_they_were_added_and_see_the_new_state() -> None:
    b = make(consecutive_failures=1)
    calls: list[tuple[str, BreakerState]] = []
    b.add_listener(lambda t: calls.append(("first", b.state)))
    b.add_listener(lambda t: calls.append(("second", b.state)))
    feed(b, "f")
    assert calls == [("first", OPEN), ("second", OPEN)]


def test_a_removed_listener_is_not_called() -> None:
    b = make(consecutive_failures=1)
    seen: list[BreakerTransition] = []
    b.add_listener(seen.append)
    b.remove_listener(seen.append)
    feed(b, "f")
    assert seen == []


# ---- persistence -------------------------------------------------------------------------------
def _closed_with_calls() -> CircuitBreaker:
    b = make(consecutive_failures=5)
    feed(b, "sfsf")
    return b


def _time_window_with_calls() -> CircuitBreaker:
    b = make(window_seconds=10.0, slow_call_s=0.5)
    b.record_success(1.0, 0.9)
    b.record_failure(3.0)
    return b


def _half_open_with_trials() -> CircuitBreaker:
    b = half_open(half_open_calls=3)
    b.record_success(1.0)
    assert b.allow(1.2)
    return b


def _forced_open() -> CircuitBreaker:
    b = make()
    b.force_open(3.0, "halt")
    return b


STATES: dict[str, Callable[[], CircuitBreaker]] = {
    "new": make,
    "closed_with_calls": _closed_with_calls,
    "time_window_with_calls": _time_window_with_calls,
    "open": tripped,
    "half_open_with_trials": _half_open_with_trials,
    "forced_open": _forced_open,
}


@pytest.mark.parametrize("build", STATES.values(), ids=STATES.keys())
def test_to_dict_survives_json_and_from_dict_restores_the_same_state(build: Callable[[], CircuitBreaker]) -> None:
    b = build()
    data = json.loads(json.dumps(b.to_dict()))
    restored = CircuitBreaker.from_dict(data, b.settings)
    assert restored.to_dict() == b.to_dict()
    assert (restored.name, restored.state, restored.since, restored.forced, restored.open_until,
            restored.current_open_timeout) == (b.name, b.state, b.since, b.forced, b.open_until,
                                               b.current_open_timeout)
    assert restored.stats(5.0) == b.stats(5.0)


def test_a_restored_half_open_breaker_keeps_counting_its_trials() -> None:
    b = _half_open_with_trials()  # 1 success, 1 in flight, 1 more allowed
    restored = CircuitBreaker.from_dict(b.to_dict(), b.settings)
    assert restored.allow(1.3)
    assert not restored.allow(1.3)
    restored.record_success(1.4)
    restored.record_success(1.4)
    assert restored.state is CLOSED


def test_from_dict_drops_a_window_that_no_longer_matches_the_settings() -> None:
    b = _closed_with_calls()
    restored = CircuitBreaker.from_dict(b.to_dict(), BreakerSettings(window_seconds=10.0))
    assert restored.stats(0.0).calls == 0


def test_from_dict_keeps_the_newest_calls_when_the_count_window_shrinks() -> None:
    b = make(window=10)
    feed(b, "ffssss")
    restored = CircuitBreaker.from_dict(b.to_dict(), BreakerSettings(window=4, min_calls=4))
    assert (restored.stats(0.0).calls, restored.stats(0.0).failures) == (4, 0)


def test_from_dict_clamps_the_open_timeout_to_the_new_settings() -> None:
    b = half_open(open_timeout=1.0, max_open_timeout=30.0)
    for _ in range(4):
        b.record_failure(b.since)
        assert b.open_until is not None
        assert b.allow(b.open_until)
    restored = CircuitBreaker.from_dict(b.to_dict(), BreakerSettings(open_timeout=1.0, max_open_timeout=5.0))
    assert restored.current_open_timeout == 5.0


@pytest.mark.parametrize(
    "patch",
    [{"format": 99}, {"state": "ajar"}, {"state": "open", "open_until": None, "forced": False}, {"since": None},
     {"window": {"kind": "count", "calls": "sxf"}}],
    ids=repr,
)
def test_from_dict_rejects_malformed_state(patch: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker.from_dict({**make().to_dict(), **patch}, BreakerSettings())


def test_from_dict_rejects_a_state_with_a_missing_key() -> None:
    data = make().to_dict()
    del data["window"]
    with pytest.raises(ValueError, match="malformed"):
        CircuitBreaker.from_dict(data, BreakerSettings())


# ---- properties --------------------------------------------------------------------------------
OPS = st.lists(
    st.tuples(
        st.sampled_from(["allow", "allow", "allow", "success", "failure", "timeout", "slow", "force_open",
                         "force_close"]),
        st.floats(0.0, 3.0),
    ),
    max_size=80,
)


def apply(b: CircuitBreaker, op: str, now: float) -> bool | None:
    if op == "allow":
        return b.allow(now)
    if op == "success":
        b.record_success(now, 0.01)
    elif op == "slow":
        b.record_success(now, 1.0)
    elif op == "failure":
        b.record_failure(now, 0.01)
    elif op == "timeout":
        b.record_timeout(now)
    elif op == "force_open":
        b.force_open(now)
    else:
        b.force_close(now)
    return None


@settings(max_examples=300)
@given(half_open_calls=st.integers(1, 4), min_calls=st.integers(1, 4), ops=OPS)
def test_never_more_than_half_open_calls_trial_calls_are_allowed_in_one_half_open_period(
        half_open_calls: int, min_calls: int, ops: list[tuple[str, float]]) -> None:
    b = make(half_open_calls=half_open_calls, min_calls=min_calls, window=4, open_timeout=0.5,
             max_open_timeout=2.0, call_timeout=2.0, slow_call_s=0.5)
    periods = 0
    trials: dict[int, int] = {}

    def on_change(t: BreakerTransition) -> None:
        nonlocal periods
        if t.new is HALF_OPEN:
            periods += 1

    b.add_listener(on_change)
    now = 0.0
    for op, dt in ops:
        now += dt
        if apply(b, op, now) and b.state is HALF_OPEN:
            trials[periods] = trials.get(periods, 0) + 1
    assert all(n <= half_open_calls for n in trials.values()), trials


@given(
    min_calls=st.integers(2, 20),
    extra_window=st.integers(0, 10),
    window_seconds=st.none() | st.floats(0.5, 100.0),
    failure_rate=st.floats(0.01, 1.0),
    outcomes=st.lists(st.tuples(st.sampled_from(["success", "slow", "failure", "timeout"]), st.floats(0.0, 5.0)),
                      max_size=19),
)
def test_a_closed_breaker_with_fewer_than_min_calls_recorded_never_opens_on_rate(
        min_calls: int, extra_window: int, window_seconds: float | None, failure_rate: float,
        outcomes: list[tuple[str, float]]) -> None:
    b = make(min_calls=min_calls, window=min_calls + extra_window, window_seconds=window_seconds,
             failure_rate=failure_rate, slow_call_s=0.5, slow_call_rate=0.01)
    now = 0.0
    for op, dt in outcomes[: min_calls - 1]:
        now += dt
        assert b.allow(now)
        apply(b, op, now)
    assert b.state is CLOSED


@settings(max_examples=200)
@given(half_open_calls=st.integers(1, 3), window_seconds=st.none() | st.just(2.0), ops=OPS)
def test_a_breaker_restored_from_to_dict_after_every_step_behaves_like_the_original(
        half_open_calls: int, window_seconds: float | None, ops: list[tuple[str, float]]) -> None:
    s = BreakerSettings(half_open_calls=half_open_calls, window_seconds=window_seconds, min_calls=2, window=4,
                        open_timeout=0.5, max_open_timeout=2.0, slow_call_s=0.5)
    original = CircuitBreaker("SIM", s, 0.0)
    copy = CircuitBreaker("SIM", s, 0.0)
    now = 0.0
    for op, dt in ops:
        now += dt
        assert apply(original, op, now) == apply(copy, op, now)
        copy = CircuitBreaker.from_dict(json.loads(json.dumps(copy.to_dict())), s)
        assert copy.to_dict() == original.to_dict()


def test_a_breaker_saved_by_a_host_whose_clock_runs_an_hour_ahead_stays_open_no_longer_than_its_open_timeout() -> None:
    saved = tripped(now=3600.0, open_timeout=1.0)  # opened on the other host's clock, an hour ahead of ours
    loaded = CircuitBreaker.from_dict(saved.to_dict(), saved.settings)
    loaded.rebase(0.0)
    assert loaded.open_until == 1.0 and loaded.allow(1.0)


def test_rebasing_a_breaker_saved_on_our_own_clock_changes_nothing() -> None:
    saved = tripped(now=10.0, open_timeout=1.0)
    loaded = CircuitBreaker.from_dict(saved.to_dict(), saved.settings)
    loaded.rebase(10.5)
    assert loaded.open_until == 11.0 and not loaded.allow(10.9)
