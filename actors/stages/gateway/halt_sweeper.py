"""The kill switch at the venue: a mass cancel of every resting order of each halted scope.

The venue knows every order's account (it echoes it on every report), so the gateway needs no list of
working orders of its own, and none that a restart could lose: on each kill-switch change, and again
every `resend_after_s` while a halt lasts (an order whose new-order request was still on the wire at
the halt rests after the first mass cancel), it asks the venue to cancel what rests for each halted
account, or for everyone when the desk is halted. The cancels come back through the drop copy.
"""

from __future__ import annotations

import logging

from actors.domain.trading_control import TradingControl
from actors.stages.gateway.link import VenueLink
from messages.venue import OrderMassCancelRequest

__all__ = ["HaltSweeper"]

log = logging.getLogger(__name__)


class HaltSweeper:
    def __init__(self, link: VenueLink, control: TradingControl, resend_after_s: float = 2.0) -> None:
        self._link = link
        self._control = control
        self._resend_after_s = resend_after_s
        self._sent_at: dict[str | None, float] = {}

    def _scopes(self) -> list[str | None]:
        """None for the whole desk, else each halted account."""
        if self._control.globally_halted:
            return [None]
        return sorted(self._control.halted_accounts())

    async def sweep(self, force: bool = False) -> int:
        """Send the mass cancels due now (all of them, after a kill-switch change: `force`); returns how
        many orders the venue canceled."""
        scopes = self._scopes()
        self._sent_at = {} if force else {s: t for s, t in self._sent_at.items() if s in scopes}
        canceled = 0
        now = self._link.clock()
        for scope in scopes:
            last = self._sent_at.get(scope)
            if last is not None and now - last < self._resend_after_s:
                continue
            if not self._link.allow():
                continue  # the breaker is open: the next sweep tries again
            try:
                reply = await self._link.send(OrderMassCancelRequest(account=scope))
            except Exception as exc:  # sent again on the next sweep
                log.warning("halt: mass cancel (%s) not done: %s", scope or "all accounts", exc)
                continue
            self._sent_at[scope] = now
            canceled += sum(1 for r in reply.reports if r.kind == "canceled")
        return canceled
