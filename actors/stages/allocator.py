"""Allocator stage: splits each fill of a block across the accounts of its allocation profile."""

from __future__ import annotations

from actors.domain.allocation import allocate_fill
from actors.runtime.stage import FIRST_DELIVERY, InputMeta, Outgoing
from cluster.config import SystemConfig
from messages import AllocationCompleted, AllocationLine, Envelope, Event, OrderFilled, subjects, wrap

__all__ = ["AllocatorHandler"]


class AllocatorHandler:
    stage = "allocator"
    concurrent = False

    def __init__(self, cfg: SystemConfig) -> None:
        self._cfg = cfg

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta = FIRST_DELIVERY) -> list[Outgoing]:
        if not isinstance(event, OrderFilled):
            return []  # accepted, canceled, rejected: nothing to allocate
        name = event.allocation_profile
        profile = self._cfg.allocation_profiles.get(name) if name else None
        if name and profile is None:
            raise KeyError(f"allocation profile {name} is not configured")
        alloc = allocate_fill(event.cum_qty, event.last_qty, profile, event.account)
        out = AllocationCompleted(
            order_id=event.order_id, block_account=event.account, symbol=event.symbol, side=event.side,
            profile=name or event.account, exec_id=event.exec_id, cum_qty=event.cum_qty,
            last_qty=event.last_qty, avg_px=event.avg_px,
            lines=tuple(AllocationLine(account=a, qty=q) for a, q in sorted(alloc.lines.items())),
            delta=tuple(AllocationLine(account=a, qty=q) for a, q in sorted(alloc.delta.items())),
        )
        partition = subjects.partition_of(event.account, self._cfg.partitions)
        return [Outgoing(subjects.allocations(partition), wrap(out, cause=envelope))]
