"""RiskChecker stage: pre-trade checks on OrderReceived -> OrderApproved or OrderRejected.

Stateful per partition: each partition's `RiskState` (positions, working orders, seen ids, rate
windows) is folded from the decisions this stage makes and from the partition's executions, and is
rebuilt from the log (`rebuild_risk_states`) when a replica takes the partition over, so limits hold
across restarts and with several replicas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from nats.js import JetStreamContext

from actors.risk_rules import Rejection
from actors.risk_state import RiskState, TradingState
from actors.stage import Outgoing
from actors.trading_control import TradingControl
from cluster.config import SystemConfig
from cluster.refprices import ReferencePrices
from cluster.streams import decoded, read_stream
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

__all__ = ["RiskHandler", "rebuild_risk_states"]


class RiskHandler:
    stage = "risk"
    concurrent = False

    def __init__(self, cfg: SystemConfig, control: TradingControl | None = None,
                 prices: ReferencePrices | None = None, states: dict[int, RiskState] | None = None) -> None:
        self._cfg = cfg
        self._control = control or TradingControl()
        self._prices = prices or ReferencePrices()
        self.states: dict[int, RiskState] = states if states is not None else {}

    def _state(self, account: str) -> tuple[int, RiskState]:
        partition = subjects.partition_of(account, self._cfg.partitions)
        return partition, self.states.setdefault(partition, RiskState())

    def _config_rejection(self, order: OrderReceived) -> Rejection | None:
        if order.venue not in self._cfg.venues:
            return Rejection("unknown_venue", f"venue {order.venue} is not configured", None, order.venue)
        profile = order.allocation_profile
        if profile is not None and profile not in self._cfg.allocation_profiles:
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

    async def handle(self, envelope: Envelope, event: Event) -> list[Outgoing]:
        if isinstance(event, OrderReceived):
            return self._decide(envelope, event)
        self.fold_execution(event)
        return []

    def fold_execution(self, event: Event) -> None:
        """Executions move working quantity into positions, or release it."""
        if isinstance(event, OrderFilled):
            self._state(event.account)[1].on_fill(event.order_id, event.last_qty, event.last_px,
                                                  exec_id=event.exec_id)
        elif isinstance(event, OrderCanceled | OrderVenueRejected):
            self._state(event.account)[1].on_done(event.order_id)

    def _decide(self, envelope: Envelope, order: OrderReceived) -> list[Outgoing]:
        partition, state = self._state(order.account)
        known = state.outcome(order.order_id)
        if known == "approved":  # a redelivery of a decision already taken: the same event again
            return [self._approve(envelope, order)]
        limits = self._cfg.risk.limits_for(order.account)
        ref = self._prices.get(order.venue, order.symbol)
        now = time.time()
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
        return [self._approve(envelope, order)]

    @staticmethod
    def _approve(envelope: Envelope, order: OrderReceived) -> Outgoing:
        approved = OrderApproved(**order.model_dump())
        return Outgoing(subjects.orders_approved(order.venue), wrap(approved, cause=envelope))


async def rebuild_risk_states(js: JetStreamContext, cfg: SystemConfig,
                              partitions: Iterable[int]) -> dict[int, RiskState]:
    """Fold the log into a fresh state per owned partition: its decisions (approved orders of every
    venue, its rejections), then its executions. Executions the partition's consumer still has to
    deliver are folded here already; folding them again changes nothing (exec ids are remembered)."""
    owned = set(partitions)
    states = {p: RiskState() for p in owned}

    def mine(account: str) -> RiskState | None:
        return states.get(subjects.partition_of(account, cfg.partitions))

    # One read per stream (an ephemeral consumer each); a message of another partition is skipped before
    # it is decoded (the subject, or the account in the raw JSON, tells whose it is): the log can be long.
    for msg in await read_stream(js, "ORDERS_APPROVED"):
        if mine(_account_of(msg.data)) is None:
            continue
        for _, env, ev in decoded([msg]):
            if isinstance(ev, OrderApproved) and (state := mine(ev.account)) is not None:
                state.on_approved(ev, env.ts / 1e9, limits=cfg.risk.limits_for(ev.account))
    handler = RiskHandler(cfg, states=states)
    for stream in ("ORDERS_REJECTED", "EXECUTIONS"):
        owned_msgs = [m for m in await read_stream(js, stream) if subjects.partition_of_subject(m.subject) in owned]
        for _, _, ev in decoded(owned_msgs):
            if isinstance(ev, OrderRejected):
                states[subjects.partition_of(ev.account, cfg.partitions)].on_rejected(ev.order_id)
            else:
                handler.fold_execution(ev)
    return states


def _account_of(data: bytes) -> str:
    try:
        return str(json.loads(data)["payload"]["account"])
    except (ValueError, KeyError, TypeError):
        return ""
