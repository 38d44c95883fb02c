"""RiskChecker stage: pre-trade checks on OrderReceived -> OrderApproved or OrderRejected.

Stateful per partition: each partition's `RiskState` (positions, working orders, seen ids, rate
windows) is folded from the decisions this stage makes and from the partition's executions, and is
rebuilt from the log (`rebuild_risk_states`) when a replica takes the partition over, so limits hold
across restarts and with several replicas.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from nats.js import JetStreamContext

from actors.domain.risk_rules import Rejection
from actors.domain.risk_state import RiskState, TradingState
from actors.domain.trading_control import TradingControl
from actors.runtime.refprices import ReferencePrices
from actors.runtime.snapshot_codec import pack, unpack
from actors.runtime.stage import FIRST_DELIVERY, InputMeta, Outgoing
from actors.runtime.streams import decoded, read_stream
from cluster.config import SystemConfig
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

__all__ = ["RISK_BUCKET", "RiskHandler", "rebuild_risk_states", "save_risk_snapshots"]


class RiskHandler:
    stage = "risk"
    concurrent = False

    def __init__(self, cfg: SystemConfig, control: TradingControl | None = None,
                 prices: ReferencePrices | None = None, states: dict[int, RiskState] | None = None) -> None:
        self._cfg = cfg
        self._control = control or TradingControl()
        self._prices = prices or ReferencePrices()
        self.states: dict[int, RiskState] = states if states is not None else {}
        #: Inputs folded so far (a snapshot is due only when this moved).
        self.changes = 0

    def _state(self, account: str) -> tuple[int, RiskState]:
        partition = subjects.partition_of(account, self._cfg.partitions)
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = RiskState(self._cfg.stages.risk.remember_order_ids)
        return partition, state

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
        limits = self._cfg.risk.limits_for(order.account)
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


RISK_BUCKET = "RISK"
_SNAPSHOT_FORMAT = 1


def _snapshot_key(partition: int) -> str:
    return f"p{partition}"


async def save_risk_snapshots(js: JetStreamContext, handler: RiskHandler, partitions: Iterable[int]) -> int:
    """Store each owned partition's state with the stream positions it covers: the last ORDERS_APPROVED
    and ORDERS_REJECTED sequences (its decisions are folded when they are taken, before they are
    published) and the ack floor of its executions consumer (a fill is folded before it is acked).
    Positions are read first, the state after, so the state covers at least what they say; folding
    again what it already holds changes nothing. Returns how many snapshots were written."""
    kv = await js.key_value(RISK_BUCKET)
    approved = (await js.stream_info("ORDERS_APPROVED")).state.last_seq
    rejected = (await js.stream_info("ORDERS_REJECTED")).state.last_seq
    executions = (await js.stream_info("EXECUTIONS")).state.last_seq
    written = 0
    for p in partitions:
        consumer = await js.consumer_info("EXECUTIONS", f"risk-exec-p{p}")
        state = handler.states.get(p)
        if state is None or consumer.ack_floor is None:
            continue
        # The ack floor covers what was acked; a consumer with nothing pending or unacked covers the whole
        # stream as it was just before (a quiet partition's floor would otherwise stay at 0, and its
        # next owner would replay every partition's executions from the start).
        quiet = not consumer.num_pending and not consumer.num_ack_pending
        covered = max(consumer.ack_floor.stream_seq, executions if quiet else 0)
        data = {"format": _SNAPSHOT_FORMAT, "approved_seq": approved, "rejected_seq": rejected,
                "exec_seq": covered, "state": state.snapshot()}  # no await in between
        await kv.put(_snapshot_key(p), pack(data))
        written += 1
    return written


async def _load_snapshots(js: JetStreamContext, partitions: Iterable[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    try:
        kv = await js.key_value(RISK_BUCKET)
    except Exception:
        return out
    for p in partitions:
        try:
            entry = await kv.get(_snapshot_key(p))
            data = unpack(entry.value)
        except Exception:  # none yet, or unreadable: that partition is rebuilt from the start of the log
            continue
        if data.get("format") == _SNAPSHOT_FORMAT:
            out[p] = data
    return out


async def rebuild_risk_states(js: JetStreamContext, cfg: SystemConfig,
                              partitions: Iterable[int]) -> dict[int, RiskState]:
    """Each owned partition's state: its last snapshot (if any), then the log after it: decisions
    (approved orders of every venue, rejections) and the partition's executions. Folding is idempotent
    (order ids and exec ids are remembered), so overlapping what a snapshot holds is harmless.
    Executions the partition's consumer still has to deliver are folded here already, for the same reason."""
    owned = set(partitions)
    if not owned:
        return {}
    snaps = await _load_snapshots(js, owned)
    remember = cfg.stages.risk.remember_order_ids
    states = {p: RiskState.restore(snaps[p]["state"], remember) if p in snaps else RiskState(remember) for p in owned}

    def start(key: str) -> int:
        return 1 + min((snaps[p][key] if p in snaps else 0) for p in owned) if owned else 1

    def mine(account: str) -> RiskState | None:
        return states.get(subjects.partition_of(account, cfg.partitions))

    # One read per stream (an ephemeral consumer each); a message of another partition is skipped before
    # it is decoded (the subject, or the account in the raw JSON, tells whose it is): the log can be long.
    for msg in await read_stream(js, "ORDERS_APPROVED", start_seq=start("approved_seq")):
        if mine(_account_of(msg.data)) is None:
            continue
        for _, env, ev in decoded([msg]):
            if isinstance(ev, OrderApproved) and (state := mine(ev.account)) is not None:
                received = ev.received_ns if ev.received_ns is not None else env.ts  # older approvals: their ts
                state.on_approved(ev, received / 1e9, limits=cfg.risk.limits_for(ev.account))
    handler = RiskHandler(cfg, states=states)
    for stream, key, subject in (("ORDERS_REJECTED", "rejected_seq", subjects.orders_rejected),
                                 ("EXECUTIONS", "exec_seq", lambda p: subjects.executions("*", p))):
        # Only the owned partitions' messages leave the server.
        stored = await read_stream(js, stream, [subject(p) for p in sorted(owned)], start_seq=start(key))
        for _, _, ev in decoded(stored):
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
