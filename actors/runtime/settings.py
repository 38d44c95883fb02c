"""The consumer loop's own settings: how a durable consumer delivers to it and how it retries."""

from __future__ import annotations

from pydantic import Field

from actors.domain.settings import Settings
from messages.units import Duration

__all__ = ["DeliveryConfig"]


class DeliveryConfig(Settings):
    ack_wait: Duration = 5.0
    max_deliver: int = Field(5, ge=1)
    backoff: tuple[Duration, ...] = (0.1, 0.2, 0.4)
    max_ack_pending: int = Field(1000, ge=1)
    batch: int = Field(128, ge=1, le=4096)
