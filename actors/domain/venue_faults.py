"""Run-time fault injection into a venue simulator: the settings and the seeded reject decision.

Pure: no Ray or NATS here. The venue process serves the settings on `admin.venue.<venue>` (see
actors.stages.venue.session); `cluster.ops.venue_admin.set_venue_faults` changes them.

- latency: seconds the venue sleeps before replying to each session request;
- reject_rate: the fraction (0..1) of new orders answered with a "rejected" report (reason
  `REJECT_REASON`); which orders is decided by a hash of (seed, client order id), so the same seed
  and the same order ids always give the same decisions;
- disconnect: the venue leaves its session subject (requests get "no responders") until cleared;
- stall: the venue stops answering session requests (they time out) until cleared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError

from messages.base import Message
from messages.venue import ExecReport, NewOrderSingle

__all__ = ["REJECT_REASON", "FaultSettings", "InvalidFaultSettings", "VenueFaults", "rejection", "should_reject"]

REJECT_REASON = "venue reject (fault injection)"

_CLEAR = "clear"
_RANGES = {"latency": (0, 60), "reject_rate": (0, 1)}


class InvalidFaultSettings(ValueError):
    """A fault-injection request the venue cannot apply (unknown key, value out of range)."""


class FaultSettings(Message):
    latency: float = Field(0.0, ge=0, le=60, strict=True)
    reject_rate: float = Field(0.0, ge=0, le=1, strict=True)
    disconnect: bool = Field(False, strict=True)
    stall: bool = Field(False, strict=True)

    def updated(self, request: Mapping[str, Any]) -> FaultSettings:
        """These settings changed by an admin request: any subset of the fields, plus ``clear: true``
        to start from the defaults. Raises InvalidFaultSettings naming the bad key."""
        if not isinstance(request, Mapping):
            raise InvalidFaultSettings(f"a fault request is a JSON object, not {type(request).__name__}")
        known = set(FaultSettings.model_fields)
        unknown = sorted(set(request) - known - {_CLEAR})
        if unknown:
            raise InvalidFaultSettings(f"unknown fault setting {unknown[0]!r}; known: "
                                       f"{', '.join([*FaultSettings.model_fields, _CLEAR])}")
        clear = request.get(_CLEAR, False)
        if not isinstance(clear, bool):
            raise InvalidFaultSettings(f"clear must be true or false, not {clear!r}")
        base = FaultSettings() if clear else self
        changes = {k: v for k, v in request.items() if k != _CLEAR}
        try:
            return FaultSettings.model_validate({**base.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "settings"
            if where in _RANGES and first["type"] in ("greater_than_equal", "less_than_equal"):
                low, high = _RANGES[where]
                raise InvalidFaultSettings(f"{where} must be within {low}..{high}, not {first['input']!r}") from None
            raise InvalidFaultSettings(f"{where}: {first['msg']} (got {first.get('input')!r})") from None


def should_reject(seed: int, cl_ord_id: str, rate: float) -> bool:
    """The seeded reject decision: True for about `rate` of all client order ids, always the same
    answer for the same (seed, id)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.blake2b(f"{seed}:{cl_ord_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def rejection(order: NewOrderSingle, venue_order_id: str, reason: str = REJECT_REASON) -> ExecReport:
    """The order's only report when the venue refuses it: "rejected", exec id ``<venue order id>-R``."""
    return ExecReport(exec_id=f"{venue_order_id}-R", cl_ord_id=order.cl_ord_id, kind="rejected",
                      venue_order_id=venue_order_id, symbol=order.symbol, side=order.side, order_qty=order.qty,
                      reason=reason, price=order.price, account=order.account,
                      allocation_profile=order.allocation_profile)


class VenueFaults:
    """The current settings of one venue and its reject decision."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.settings = FaultSettings()

    def update(self, request: Mapping[str, Any]) -> FaultSettings:
        self.settings = self.settings.updated(request)
        return self.settings

    def rejects(self, cl_ord_id: str) -> bool:
        return should_reject(self.seed, cl_ord_id, self.settings.reject_rate)
