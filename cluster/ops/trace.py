"""`trade trace ORDER_ID`: every event of one order, from every stream, in time order."""

from __future__ import annotations

from nats.js import JetStreamContext

from actors.runtime.streams import decoded, read_stream
from messages import Envelope, OrderReceived, subjects

__all__ = ["find_order", "trace"]

#: The streams an order's events live in, with the subject filter that narrows each to its partition.
_STREAMS = (("ORDERS_RECEIVED", "received"), ("ORDERS_REJECTED", "rejected"), ("ORDERS_APPROVED", None),
            ("EXECUTIONS", "executions"), ("ALLOCATIONS", "allocations"))


async def trace(js: JetStreamContext, order_id: str, account: str | None, partitions: int) -> list[Envelope]:
    """The order's events (envelopes carry its id as correlation_id). With the account, only its
    partition's subjects are read."""
    p = subjects.partition_of(account, partitions) if account else "*"
    filters = {"received": subjects.orders_received(p), "rejected": subjects.orders_rejected(p),
               "executions": subjects.executions("*", p), "allocations": subjects.allocations(p)}
    found: list[Envelope] = []
    for stream, kind in _STREAMS:
        for _, env, _ in decoded(await read_stream(js, stream, filters.get(kind) if kind else None)):
            if env.correlation_id == order_id:
                found.append(env)
    return sorted(found, key=lambda e: e.ts)


async def find_order(js: JetStreamContext, order_id: str, account: str | None,
                     partitions: int) -> OrderReceived | None:
    """The order as it was received (with its account and venue), or None."""
    p = subjects.partition_of(account, partitions) if account else "*"
    for _, env, event in decoded(await read_stream(js, "ORDERS_RECEIVED", subjects.orders_received(p))):
        if env.correlation_id == order_id and isinstance(event, OrderReceived):
            return event
    return None
