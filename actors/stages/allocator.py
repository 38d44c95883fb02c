"""Allocator stage: splits each fill of a block across the accounts of its allocation profile (its
definition, `STAGE`, is at the end)."""

from __future__ import annotations

from pydantic import Field

from actors.domain.allocation import allocate_fill
from actors.domain.allocation_profile import AllocationProfile
from actors.domain.settings import Settings
from actors.runtime.stage import FIRST_DELIVERY, InputMeta, Outgoing
from actors.stages.definition import Built, Consumes, Handler, StageDef, StageRun
from messages import AllocationCompleted, AllocationLine, Envelope, Event, OrderFilled, subjects, wrap

__all__ = ["STAGE", "AllocatorHandler", "AllocatorSettings"]


class AllocatorSettings(Settings):
    partitions: int = Field(ge=1)
    allocation_profiles: dict[str, AllocationProfile] = {}


class AllocatorHandler:
    stage = "allocator"
    concurrent = False

    def __init__(self, settings: AllocatorSettings) -> None:
        self._settings = settings

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta = FIRST_DELIVERY) -> list[Outgoing]:
        if not isinstance(event, OrderFilled):
            return []  # accepted, canceled, rejected: nothing to allocate
        name = event.allocation_profile
        profile = self._settings.allocation_profiles.get(name) if name else None
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
        partition = subjects.partition_of(event.account, self._settings.partitions)
        return [Outgoing(subjects.allocations(partition), wrap(out, cause=envelope))]


async def build(run: StageRun) -> Built:
    return Built({"executions": Handler(AllocatorHandler(run.settings))})


STAGE = StageDef(
    name="allocator",
    scope="partition",
    consumes=(Consumes("executions", "EXECUTIONS", "executions.*.{partition}", "allocator-p{partition}"),),
    publishes=("allocations.*",),
    settings=AllocatorSettings,
    build=build,
)
