"""A venue gateway's own settings (`stages.gateway` in the config, beside replicas and delivery)."""

from __future__ import annotations

from pydantic import Field

from actors.domain.settings import Settings
from messages.units import Duration
from supervision.breaker import BreakerSettings

__all__ = ["BreakerConfig", "GatewaySettings"]


class BreakerConfig(Settings):
    """A venue's circuit breaker (see supervision.breaker)."""

    failure_rate: float = Field(0.5, gt=0, le=1)
    window: int = Field(20, ge=1)
    min_calls: int = Field(5, ge=1)
    consecutive_failures: int | None = Field(None, ge=1)
    slow_call: Duration | None = None
    open_timeout: Duration = 1.0
    max_open_timeout: Duration = 30.0
    half_open_calls: int = Field(1, ge=1)

    def settings(self, call_timeout: float) -> BreakerSettings:
        return BreakerSettings(failure_rate=self.failure_rate, window=self.window, min_calls=self.min_calls,
                               consecutive_failures=self.consecutive_failures, slow_call_s=self.slow_call,
                               call_timeout=call_timeout, open_timeout=self.open_timeout,
                               max_open_timeout=self.max_open_timeout, half_open_calls=self.half_open_calls)


class GatewaySettings(Settings):
    #: How long one send to the venue may take before it counts as failed.
    call_timeout: Duration = 2.0
    #: How long an order may wait for an unavailable venue before it is rejected with VENUE_UNAVAILABLE.
    max_hold: Duration = 30.0
    #: Retries of a failed send: exponential from `retry_min` to `retry_max`, with +-20% jitter.
    retry_min: Duration = 0.1
    retry_max: Duration = 2.0
    breaker: BreakerConfig = BreakerConfig()
