"""RiskChecker stage: pre-trade checks on OrderReceived -> OrderApproved or OrderRejected."""

from __future__ import annotations

from actors.risk_rules import Rejection, check_order
from actors.risk_state import TradingState
from actors.stage import Outgoing
from actors.trading_control import TradingControl
from cluster.config import SystemConfig
from messages import Envelope, Event, OrderApproved, OrderReceived, OrderRejected, subjects, wrap

__all__ = ["RiskHandler"]


class RiskHandler:
    stage = "risk"
    concurrent = False

    def __init__(self, cfg: SystemConfig, control: TradingControl | None = None) -> None:
        self._cfg = cfg
        self._control = control or TradingControl()

    def _switch_rejection(self, order: OrderReceived) -> Rejection | None:
        switch = self._control.switch_for(order.account)
        if switch.state is TradingState.ACTIVE:
            return None
        # REDUCING needs positions in the risk stage (not there yet): it blocks new orders like HALTED.
        return Rejection(f"trading_{switch.state.value.lower()}", f"trading is {switch.state.value} for "
                         f"{switch.scope}: {switch.reason}", TradingState.ACTIVE.value, switch.state.value)

    def _config_rejection(self, order: OrderReceived) -> Rejection | None:
        if order.venue not in self._cfg.venues:
            return Rejection("unknown_venue", f"venue {order.venue} is not configured", None, order.venue)
        profile = order.allocation_profile
        if profile is not None and profile not in self._cfg.allocation_profiles:
            return Rejection("unknown_allocation_profile", f"allocation profile {profile} is not configured",
                             None, profile)
        return None

    async def handle(self, envelope: Envelope, event: Event) -> list[Outgoing]:
        if not isinstance(event, OrderReceived):
            raise TypeError(f"risk takes OrderReceived, not {event.TYPE}")
        rejection = (self._switch_rejection(event) or self._config_rejection(event)
                     or check_order(event, self._cfg.risk.limits_for(event.account)))
        partition = subjects.partition_of(event.account, self._cfg.partitions)
        if rejection is not None:
            out: Event = OrderRejected(order_id=event.order_id, account=event.account, symbol=event.symbol,
                                       rule=rejection.rule, reason=rejection.reason, limit=rejection.limit,
                                       value=rejection.value)
            return [Outgoing(subjects.orders_rejected(partition), wrap(out, cause=envelope))]
        approved = OrderApproved(**event.model_dump())
        return [Outgoing(subjects.orders_approved(event.venue), wrap(approved, cause=envelope))]
