"""Risk snapshots: each owned partition's state with the stream positions it covers (KV bucket RISK),
and the rebuild of a partition from its snapshot and the log after it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from nats.js import JetStreamContext

from actors.domain.risk_state import RiskState
from actors.runtime.snapshot_codec import pack, unpack
from actors.runtime.streams import decoded, read_stream
from actors.stages.risk import RiskHandler
from actors.stages.risk_settings import RiskStageSettings
from messages import OrderApproved, OrderRejected, subjects

__all__ = ["RISK_BUCKET", "rebuild_risk_states", "save_risk_snapshots"]


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


async def rebuild_risk_states(js: JetStreamContext, settings: RiskStageSettings,
                              partitions: Iterable[int]) -> dict[int, RiskState]:
    """Each owned partition's state: its last snapshot (if any), then the log after it: decisions
    (approved orders of every venue, rejections) and the partition's executions. Folding is idempotent
    (order ids and exec ids are remembered), so overlapping what a snapshot holds is harmless.
    Executions the partition's consumer still has to deliver are folded here already, for the same reason."""
    owned = set(partitions)
    if not owned:
        return {}
    snaps = await _load_snapshots(js, owned)
    remember = settings.remember_order_ids
    states = {p: RiskState.restore(snaps[p]["state"], remember) if p in snaps else RiskState(remember) for p in owned}

    def start(key: str) -> int:
        return 1 + min((snaps[p][key] if p in snaps else 0) for p in owned) if owned else 1

    def mine(account: str) -> RiskState | None:
        return states.get(subjects.partition_of(account, settings.partitions))

    # One read per stream (an ephemeral consumer each); a message of another partition is skipped before
    # it is decoded (the subject, or the account in the raw JSON, tells whose it is): the log can be long.
    for msg in await read_stream(js, "ORDERS_APPROVED", start_seq=start("approved_seq")):
        if mine(_account_of(msg.data)) is None:
            continue
        for _, env, ev in decoded([msg]):
            if isinstance(ev, OrderApproved) and (state := mine(ev.account)) is not None:
                received = ev.received_ns if ev.received_ns is not None else env.ts  # older approvals: their ts
                state.on_approved(ev, received / 1e9, limits=settings.risk.limits_for(ev.account))
    handler = RiskHandler(settings, states=states)
    for stream, key, subject in (("ORDERS_REJECTED", "rejected_seq", subjects.orders_rejected),
                                 ("EXECUTIONS", "exec_seq", lambda p: subjects.executions("*", p))):
        # Only the owned partitions' messages leave the server.
        stored = await read_stream(js, stream, [subject(p) for p in sorted(owned)], start_seq=start(key))
        for _, _, ev in decoded(stored):
            if isinstance(ev, OrderRejected):
                states[subjects.partition_of(ev.account, settings.partitions)].on_rejected(ev.order_id)
            else:
                handler.fold_execution(ev)
    return states


def _account_of(data: bytes) -> str:
    try:
        return str(json.loads(data)["payload"]["account"])
    except (ValueError, KeyError, TypeError):
        return ""
