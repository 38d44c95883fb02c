"""A circuit breaker for one venue: a pure state machine, modelled on pybreaker and Resilience4j.

The caller passes the time (`now`, seconds) to every method; nothing here sleeps or does I/O.
When the state is shared between processes (a JetStream KV bucket read by every gateway instance,
the supervisor and the CLI) `now` must come from a clock they share, i.e. wall-clock time, because
`open_until` written by one process is compared with `now` in another.

    CLOSED --(failure rate / slow-call rate over the window, or N consecutive failures)--> OPEN
    OPEN --(allow() after the open timeout)--> HALF_OPEN
    HALF_OPEN --(half_open_calls trials succeed)--> CLOSED   (the open timeout is reset)
    HALF_OPEN --(first trial fails, is slow or times out)--> OPEN   (the open timeout doubles, up to the max)
    any --force_open()--> OPEN (pinned: no half-open until force_close())   any --force_close()--> CLOSED

Outcomes reported while OPEN, or while HALF_OPEN with no trial in flight, belong to calls let
through before the breaker opened; they are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from supervision.breaker_window import TIME_BUCKETS, CountWindow, TimeWindow, WindowStats

__all__ = [
    "TIME_BUCKETS",
    "BreakerListener",
    "BreakerSettings",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "WindowStats",
]

_FORMAT = 1


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    failure_rate: float = 0.5
    window: int = 20
    window_seconds: float | None = None
    min_calls: int = 5
    consecutive_failures: int | None = None
    slow_call_s: float | None = None
    slow_call_rate: float = 1.0
    call_timeout: float = 2.0
    open_timeout: float = 1.0
    max_open_timeout: float = 30.0
    half_open_calls: int = 1

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 0.0 < self.failure_rate <= 1.0:
            problems.append(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        if not 0.0 < self.slow_call_rate <= 1.0:
            problems.append(f"slow_call_rate must be in (0, 1], got {self.slow_call_rate}")
        if self.window < 1:
            problems.append(f"window must be >= 1, got {self.window}")
        if self.window_seconds is not None and not _positive(self.window_seconds):
            problems.append(f"window_seconds must be a positive number of seconds, got {self.window_seconds}")
        if self.min_calls < 1:
            problems.append(f"min_calls must be >= 1, got {self.min_calls}")
        elif self.window_seconds is None and self.min_calls > self.window:
            problems.append(f"min_calls ({self.min_calls}) must not exceed window ({self.window}): "
                            "the rate could never be judged")
        if self.consecutive_failures is not None and self.consecutive_failures < 1:
            problems.append(f"consecutive_failures must be >= 1 or None, got {self.consecutive_failures}")
        if not _positive(self.call_timeout):
            problems.append(f"call_timeout must be a positive number of seconds, got {self.call_timeout}")
        if self.slow_call_s is not None:
            if not _positive(self.slow_call_s):
                problems.append(f"slow_call_s must be a positive number of seconds, got {self.slow_call_s}")
            elif _positive(self.call_timeout) and self.slow_call_s >= self.call_timeout:
                problems.append(f"slow_call_s ({self.slow_call_s}) must be below call_timeout "
                                f"({self.call_timeout}): a call that slow is already a timeout")
        if not _positive(self.open_timeout):
            problems.append(f"open_timeout must be a positive number of seconds, got {self.open_timeout}")
        if not _positive(self.max_open_timeout) or (
                _positive(self.open_timeout) and self.max_open_timeout < self.open_timeout):
            problems.append(f"max_open_timeout ({self.max_open_timeout}) must be >= open_timeout "
                            f"({self.open_timeout})")
        if self.half_open_calls < 1:
            problems.append(f"half_open_calls must be >= 1, got {self.half_open_calls}")
        if problems:
            raise ValueError("invalid breaker settings: " + "; ".join(problems))


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class BreakerTransition:
    name: str
    old: BreakerState
    new: BreakerState
    at: float
    reason: str


BreakerListener = Callable[[BreakerTransition], None]


# ---- the breaker --------------------------------------------------------------------------------
class CircuitBreaker:
    """One venue's breaker. See the module docstring for the state diagram."""

    def __init__(self, name: str, settings: BreakerSettings, now: float) -> None:
        self.name = name
        self.settings = settings
        self._state = BreakerState.CLOSED
        self._since = now
        self._forced = False
        self._open_until: float | None = None
        self._open_timeout = settings.open_timeout
        self._consecutive = 0
        self._window: CountWindow | TimeWindow = (
            CountWindow(settings.window) if settings.window_seconds is None else TimeWindow(settings.window_seconds))
        self._trials: list[float] = []  # start times of the half-open trials still in flight
        self._trial_successes = 0  # trials let through = len(self._trials) + self._trial_successes
        self._listeners: list[BreakerListener] = []

    # ---- read-only views ------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def since(self) -> float:
        """When the breaker entered its current state."""
        return self._since

    @property
    def forced(self) -> bool:
        """True while an operator's force_open() pins the breaker open."""
        return self._forced

    @property
    def open_until(self) -> float | None:
        """When an OPEN breaker next lets a trial through; None unless OPEN (and None when forced)."""
        return self._open_until

    @property
    def current_open_timeout(self) -> float:
        """The open timeout of the current (or next) open period."""
        return self._open_timeout

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def stats(self, now: float) -> WindowStats:
        """The closed-state window as of `now` (empty outside CLOSED)."""
        return self._window.stats(now)

    # ---- listeners ------------------------------------------------------------------------------
    def add_listener(self, fn: BreakerListener) -> None:
        """`fn(transition)` is called after every state change, once the breaker is consistent.

        Listeners run in the order they were added; an exception from one propagates to the caller.
        """
        self._listeners.append(fn)

    def remove_listener(self, fn: BreakerListener) -> None:
        self._listeners.remove(fn)

    # ---- the call protocol ----------------------------------------------------------------------
    def allow(self, now: float) -> bool:
        """May a call go to the venue now? In HALF_OPEN a True answer is a trial whose outcome must be recorded."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self._open_until is None or now < self._open_until:
                return False
            self._enter_half_open(now)
        if self._trials and now - self._trials[0] >= self.settings.call_timeout:
            # the oldest trial never reported back (its caller died?): it timed out
            self._reopen(now, "half-open trial timed out without an outcome")
            return False
        if len(self._trials) + self._trial_successes >= self.settings.half_open_calls:
            return False
        self._trials.append(now)
        return True

    def record_success(self, now: float, duration: float = 0.0) -> None:
        """A call let through by allow() succeeded after `duration` seconds.

        A call slower than call_timeout timed out, and is recorded as a failure.
        """
        if duration > self.settings.call_timeout:
            self.record_failure(now, duration, f"timeout ({duration:.3f}s > call_timeout "
                                               f"{self.settings.call_timeout}s)")
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive = 0
            self._window.record(now, False, self._is_slow(duration))
            self._check_trip(now)
        elif self._state is BreakerState.HALF_OPEN and self._trials:
            self._trials.pop(0)
            if self._is_slow(duration):
                self._reopen(now, f"half-open trial was slow ({duration:.3f}s > {self.settings.slow_call_s}s)")
                return
            self._trial_successes += 1
            if self._trial_successes >= self.settings.half_open_calls:
                self._close(now, f"{self._trial_successes} half-open trial(s) succeeded")

    def record_failure(self, now: float, duration: float = 0.0, reason: str = "") -> None:
        """A call let through by allow() failed (after `duration` seconds, for the slow-call rate)."""
        if self._state is BreakerState.CLOSED:
            self._consecutive += 1
            self._window.record(now, True, self._is_slow(duration))
            self._check_trip(now, reason)
        elif self._state is BreakerState.HALF_OPEN and self._trials:
            self._trials.pop(0)
            self._reopen(now, "half-open trial failed" + (f": {reason}" if reason else ""))

    def record_timeout(self, now: float) -> None:
        """A call let through by allow() got no answer within call_timeout: a (slow) failure."""
        self.record_failure(now, self.settings.call_timeout, "timeout")

    # ---- operator overrides ---------------------------------------------------------------------
    def force_open(self, now: float, reason: str = "") -> None:
        """Open and stay open (no half-open trials) until force_close()."""
        self._forced = True
        self._open_until = None
        if self._state is not BreakerState.OPEN:
            self._change(BreakerState.OPEN, now, "forced open" + (f": {reason}" if reason else ""))

    def force_close(self, now: float, reason: str = "") -> None:
        """Close now, forgetting the window and resetting the open timeout."""
        self._forced = False
        if self._state is BreakerState.CLOSED:
            self._reset_counters()
            self._open_timeout = self.settings.open_timeout
            return
        self._close(now, "forced closed" + (f": {reason}" if reason else ""))

    # ---- transitions ----------------------------------------------------------------------------
    def _is_slow(self, duration: float) -> bool:
        return self.settings.slow_call_s is not None and duration > self.settings.slow_call_s

    def _check_trip(self, now: float, reason: str = "") -> None:
        s = self.settings
        if s.consecutive_failures is not None and self._consecutive >= s.consecutive_failures:
            why = f"{self._consecutive} consecutive failures"
            self._open(now, why + (f" (last: {reason})" if reason else ""))
            return
        stats = self._window.stats(now)
        if stats.calls < s.min_calls:
            return
        if stats.failure_rate >= s.failure_rate:
            self._open(now, f"failure rate {stats.failure_rate:.0%} >= {s.failure_rate:.0%} over {stats.calls} calls"
                       + (f" (last: {reason})" if reason else ""))
        elif s.slow_call_s is not None and stats.slow_rate >= s.slow_call_rate:
            self._open(now, f"slow-call rate {stats.slow_rate:.0%} >= {s.slow_call_rate:.0%} over "
                       f"{stats.calls} calls (slower than {s.slow_call_s}s)")

    def _open(self, now: float, reason: str) -> None:
        self._open_until = now + self._open_timeout
        self._change(BreakerState.OPEN, now, reason)

    def _reopen(self, now: float, reason: str) -> None:
        self._open_timeout = min(self.settings.max_open_timeout, self._open_timeout * 2)
        self._open(now, reason)

    def _enter_half_open(self, now: float) -> None:
        self._open_until = None
        self._change(BreakerState.HALF_OPEN, now, f"open timeout of {self._open_timeout}s elapsed")

    def _close(self, now: float, reason: str) -> None:
        self._open_until = None
        self._open_timeout = self.settings.open_timeout
        self._change(BreakerState.CLOSED, now, reason)

    def _reset_counters(self) -> None:
        self._window.clear()
        self._consecutive = 0
        self._trials.clear()
        self._trial_successes = 0

    def _change(self, new: BreakerState, now: float, reason: str) -> None:
        old = self._state
        self._state = new
        self._since = now
        if new is not BreakerState.OPEN:
            self._forced = False
        self._reset_counters()
        transition = BreakerTransition(self.name, old, new, now, reason)
        for fn in list(self._listeners):
            fn(transition)

    # ---- persistence (JetStream KV) -------------------------------------------------------------
    def rebase(self, now: float) -> None:
        """Take over a state saved by another process, whose clock may not be ours: nothing it says may
        lie further ahead than this breaker could have put it itself (an open breaker stays open at most
        its open timeout from now; times in the future become now)."""
        if self._open_until is not None and self._open_until > now + self._open_timeout:
            self._open_until = now + self._open_timeout
        self._since = min(self._since, now)
        self._trials = [min(t, now) for t in self._trials]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (listeners are not included)."""
        return {
            "format": _FORMAT,
            "name": self.name,
            "state": self._state.value,
            "since": self._since,
            "forced": self._forced,
            "open_until": self._open_until,
            "open_timeout": self._open_timeout,
            "consecutive_failures": self._consecutive,
            "window": self._window.to_json(),
            "trials": list(self._trials),
            "trial_successes": self._trial_successes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], settings: BreakerSettings) -> CircuitBreaker:
        """Rebuild a breaker from to_dict() output under (possibly changed) settings.

        A window whose kind or size no longer matches the settings is dropped; the open timeout is
        clamped to the settings' range. Malformed data raises ValueError.
        """
        try:
            if d.get("format") != _FORMAT:
                raise ValueError(f"unknown breaker state format {d.get('format')!r}")
            breaker = cls(str(d["name"]), settings, float(d["since"]))
            state = BreakerState(d["state"])
            breaker._state = state
            breaker._forced = bool(d["forced"]) and state is BreakerState.OPEN
            if state is BreakerState.OPEN and not breaker._forced:
                if d["open_until"] is None:
                    raise ValueError("an open breaker that is not forced needs open_until")
                breaker._open_until = float(d["open_until"])
            breaker._open_timeout = min(settings.max_open_timeout,
                                        max(settings.open_timeout, float(d["open_timeout"])))
            breaker._consecutive = max(0, int(d["consecutive_failures"]))
            breaker._window.load(d["window"])
            if state is BreakerState.HALF_OPEN:
                # keep the invariant trials in flight + successes <= half_open_calls, with a trial still to come
                trials = [float(t) for t in d["trials"]][: settings.half_open_calls]
                room = settings.half_open_calls - len(trials) if trials else settings.half_open_calls - 1
                breaker._trials = trials
                breaker._trial_successes = min(room, max(0, int(d["trial_successes"])))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed breaker state: {exc!r}") from exc
        return breaker

    def __repr__(self) -> str:
        return (f"CircuitBreaker({self.name!r}, state={self._state.value}, forced={self._forced}, "
                f"open_until={self._open_until}, open_timeout={self._open_timeout})")
