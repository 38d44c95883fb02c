"""The risk stage's definition: each partition's orders and executions, decided and folded by
`RiskHandler`; the kill switch and the reference prices watched before the first message is taken; the
owned partitions rebuilt from their snapshots, snapshotted every few seconds and on a clean stop."""

from __future__ import annotations

import asyncio

from actors.domain.risk_state import RiskState
from actors.domain.trading_control import TradingControl
from actors.runtime.control import watch_control
from actors.runtime.refprices import ReferencePrices, watch_reference_prices
from actors.stages.definition import Built, Consumes, Handler, Snapshots, StageDef, StageRun
from actors.stages.risk import RiskHandler
from actors.stages.risk_settings import RiskStageSettings
from actors.stages.risk_snapshots import rebuild_risk_states, save_risk_snapshots

__all__ = ["SNAPSHOT_EVERY_S", "STAGE"]

#: How often a risk replica snapshots its partitions (when they changed).
SNAPSHOT_EVERY_S = 5.0
_READY_S = 30.0


async def rebuild(run: StageRun) -> dict[int, RiskState]:
    return await rebuild_risk_states(run.js, run.settings, sorted(run.owned_partitions))


async def build(run: StageRun) -> Built:
    settings: RiskStageSettings = run.settings
    control, prices = TradingControl(), ReferencePrices()
    loaded, priced = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(watch_control(run.js, control, loaded, None, run.alarms)),
             asyncio.create_task(watch_reference_prices(run.js, prices, priced, run.alarms))]
    # The kill switch and the prices apply before the first message is taken, then as each change arrives.
    await asyncio.wait_for(loaded.wait(), _READY_S)
    await asyncio.wait_for(priced.wait(), _READY_S)
    partitions = sorted(run.owned_partitions)
    handler = RiskHandler(settings, control, prices, run.state)
    snapshots = Snapshots(save=lambda: save_risk_snapshots(run.js, handler, partitions),
                          version=lambda: handler.changes, every=SNAPSHOT_EVERY_S)
    return Built({"orders": Handler(handler), "executions": Handler(handler)}, tasks, snapshots=snapshots)


STAGE = StageDef(
    name="risk",
    scope="partition",
    consumes=(
        Consumes("orders", "ORDERS_RECEIVED", "orders.received.{partition}", "risk-p{partition}"),
        # Folds idempotently and never fails a message on its own: one ack covers the batch.
        Consumes("executions", "EXECUTIONS", "executions.*.{partition}", "risk-exec-p{partition}", ack_all=True),
    ),
    publishes=("orders.approved.*", "orders.rejected.*"),
    settings=RiskStageSettings,
    build=build,
    rebuild=rebuild,
)
