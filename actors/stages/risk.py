"""RiskChecker stage: pre-trade checks on OrderReceived -> OrderApproved or OrderRejected.

Stateful per partition: each partition's `RiskState` (positions, working orders, seen ids, rate
windows) is folded from the decisions this stage makes and from the partition's executions, and is
rebuilt from its snapshot and the log after it (actors.stages.risk_snapshots) when a replica takes the
partition over, so limits hold across restarts and with several replicas. The stage's definition is in
actors.stages.risk_stage.
"""

from __future__ import annotations

from actors.domain.risk_rules import Rejection
from actors.domain.risk_state import RiskState, TradingState
from actors.domain.trading_control import TradingControl
from actors.runtime.refprices import ReferencePrices
from actors.runtime.stage import FIRST_DELIVERY, InputMeta, Outgoing
from actors.stages.risk_settings import RiskStageSettings
from messages import (
    Envelope,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderReceived,
    OrderRejected,
    OrderVenueRejected,
    subjects,
    wrap,
)

__all__ = ["RiskHandler"]


class RiskHandler:
    stage = "risk"
    concurrent = False

    def __init__(self, settings: RiskStageSettings, control: TradingControl | None = None,
                 prices: ReferencePrices | None = None, states: dict[int, RiskState] | None = None) -> None:
        self._settings = settings
        self._control = control or TradingControl()
        self._prices = prices or ReferencePrices()
        self.states: dict[int, RiskState] = states if states is not None else {}
        #: Inputs folded so far (a snapshot is due only when this moved).
        self.changes = 0

    def _state(self, account: str) -> tuple[int, RiskState]:
        partition = subjects.partition_of(account, self._settings.partitions)
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = RiskState(self._settings.remember_order_ids)
        return partition, state

    def _config_rejection(self, order: OrderReceived) -> Rejection | None:
        if order.venue not in self._settings.venues:
            return Rejection("unknown_venue", f"venue {order.venue} is not configured", None, order.venue)
        profile = order.allocation_profile
        if profile is not None and profile not in self._settings.allocation_profiles:
            return Rejection("unknown_allocation_profile", f"allocation profile {profile} is not configured",
                             None, profile)
        return None

    def _sync_trading_state(self, state: RiskState, account: str) -> str:
        """Copy the kill switch (watched from the CONTROL bucket) into the partition's state."""
        switch = self._control.switch_for(account)
        state.set_trading_state(TradingState.ACTIVE)
        state.set_trading_state(TradingState.ACTIVE, account)
        if switch.scope == "global":
            state.set_trading_state(switch.state)
        else:
            state.set_trading_state(switch.state, account)
        return switch.reason

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta = FIRST_DELIVERY) -> list[Outgoing]:
        self.changes += 1
        if isinstance(event, OrderReceived):
            return self._decide(envelope, event, meta.stored_ns)
        self.fold_execution(event)
        return []

    def fold_execution(self, event: Event) -> None:
        """Executions move working quantity into positions, or release it."""
        if isinstance(event, OrderFilled) and event.correction:
            self._state(event.account)[1].on_late_fill(event.account, event.symbol, event.side, event.order_id,
                                                       event.last_qty, event.last_px, event.exec_id)
        elif isinstance(event, OrderFilled):
            self._state(event.account)[1].on_fill(event.order_id, event.last_qty, event.last_px,
                                                  exec_id=event.exec_id)
        elif isinstance(event, OrderCanceled | OrderVenueRejected):
            self._state(event.account)[1].on_done(event.order_id)

    def _decide(self, envelope: Envelope, order: OrderReceived, received_ns: int) -> list[Outgoing]:
        """`received_ns`: when the broker stored the order. Rate windows count in the broker's time, so
        a decision does not depend on this host's clock (nor on how late a backlog is worked off)."""
        partition, state = self._state(order.account)
        known = state.outcome(order.order_id)
        if known == "approved":  # a redelivery of a decision already taken: the same event again
            return [self._approve(envelope, order, received_ns)]
        limits = self._settings.risk.limits_for(order.account)
        ref = self._prices.get(order.venue, order.symbol)
        now = received_ns / 1e9
        rejection = None
        if known == "rejected":
            rejection = Rejection("duplicate_order_id", f"order id {order.order_id} was already rejected",
                                  None, order.order_id)
        else:
            rejection = self._config_rejection(order)
        if rejection is None:
            why = self._sync_trading_state(state, order.account)
            rejection = state.check(order, limits, ref, now, marks=self._prices.for_venue(order.venue))
            if rejection is not None and rejection.rule == "trading_state" and why:
                rejection = Rejection(rejection.rule, f"{rejection.reason} ({why})", rejection.limit,
                                      rejection.value)
        if rejection is not None:
            state.on_rejected(order.order_id)
            out = OrderRejected(order_id=order.order_id, account=order.account, symbol=order.symbol,
                                rule=rejection.rule, reason=rejection.reason, limit=rejection.limit,
                                value=rejection.value)
            return [Outgoing(subjects.orders_rejected(partition), wrap(out, cause=envelope))]
        state.on_approved(order, now, reference_price=ref, limits=limits)
        return [self._approve(envelope, order, received_ns)]

    @staticmethod
    def _approve(envelope: Envelope, order: OrderReceived, received_ns: int) -> Outgoing:
        approved = OrderApproved(**order.model_dump(), received_ns=received_ns or None)
        return Outgoing(subjects.orders_approved(order.venue), wrap(approved, cause=envelope))
