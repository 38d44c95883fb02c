"""The workers a supervised child runs (hosted by `actors.stages.host.ChildHost`, one per process): each
connects to NATS, runs its stage's consumer loops, and reports liveness.

`run()` is the long-running call a supervisor awaits (through the host): it returns only when the
worker is stopped, so its failure is how the supervisor learns that the process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from typing import Any

import ray

from actors.domain.gateway_orders import GatewayOrders
from actors.domain.trading_control import TradingControl
from actors.runtime.advisories import MaxDeliveriesHandler, decode_advisory
from actors.runtime.alarms import Alarms
from actors.runtime.control import watch_control
from actors.runtime.faults import FaultPoints, skew_wall_clock
from actors.runtime.gc_tuning import gc_clock
from actors.runtime.loop import ConsumerLoop, RecentIds
from actors.runtime.nats_conn import connect_retrying
from actors.runtime.refprices import ReferencePrices, watch_reference_prices
from actors.runtime.stage import Directed, StageHandler
from actors.runtime.waiting import first_of
from actors.stages.allocator import AllocatorHandler
from actors.stages.gateway.breaker import VenueBreaker
from actors.stages.gateway.closures import Closures
from actors.stages.gateway.halt_sweeper import HaltSweeper
from actors.stages.gateway.handlers import CancelHandler, DropCopyHandler, GatewayHandler, OrderWaits, decode_report
from actors.stages.gateway.link import VenueLink
from actors.stages.positions import PositionsProjection
from actors.stages.risk import RiskHandler, rebuild_risk_states, save_risk_snapshots
from cluster.config import SystemConfig
from cluster.topology import ADVISORIES_DURABLE, consumer_specs
from supervision.breaker import BreakerState
from supervision.decider import Decider, Directive

__all__ = ["ALARMS_KEY", "ORDERS_KEY", "PositionsWorker", "StageWorker", "WorkerBase", "identity"]

log = logging.getLogger(__name__)

#: Keys of a child's stats beside its consumers': alarms raised by kind; a gateway's orders.
ALARMS_KEY = "alarms"
ORDERS_KEY = "orders"

#: How often a risk replica snapshots its partitions (when they changed).
RISK_SNAPSHOT_EVERY_S = 5.0


def identity() -> dict[str, Any]:
    ctx = ray.get_runtime_context()
    return {"pid": os.getpid(), "node": ctx.get_node_id()[:12], "actor_id": ctx.get_actor_id()}


class WorkerBase:
    def __init__(self, cfg_json: str, name: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        self.cfg = SystemConfig.model_validate_json(cfg_json)
        self.name = name
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._result: dict[str, Any] = {}
        self.started_at = time.time()

    async def run(self) -> dict[str, Any]:
        """The long-running call: returns when the actor is stopped (or a decider stops it)."""
        try:
            self._result = await self._run()
            return self._result
        finally:
            self._finished.set()

    async def _run(self) -> dict[str, Any]:
        raise NotImplementedError

    async def wait_stopped(self) -> dict[str, Any]:
        """For a supervisor that adopted this actor (it did not make the `run()` call): returns when
        run() ends, and fails when the process dies, as run() would."""
        await self._finished.wait()
        return self._result

    async def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Returns once the actor consumes (or serves); with its pid and node."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        return identity()

    async def pid(self) -> int:
        return os.getpid()

    async def health(self) -> dict[str, int]:
        """A heartbeat: a progress counter and how much work is pending (see supervision.health)."""
        return {"progress": 0, "pending": 0}

    def gc_stats(self) -> dict[str, Any]:
        """This process's garbage collections so far: count and seconds per generation."""
        return gc_clock().snapshot()

    async def freeze(self, seconds: float) -> None:
        """Fault injection: block this process's event loop, as a deadlock or a runaway loop would."""
        time.sleep(seconds)

    def skew_clock(self, seconds: float) -> None:
        """Fault injection: this process's wall clock reads `seconds` off from now on (0 restores it)."""
        skew_wall_clock(seconds)

    async def stop(self) -> None:
        self._stop.set()


class StageWorker(WorkerBase):
    """One replica of a stage, owning the consumers (partitions) the supervisor assigned it."""

    def __init__(self, cfg_json: str, name: str, stage: str, durables: list[str], venue: str | None = None,
                 standby: bool = False) -> None:
        super().__init__(cfg_json, name)
        self.stage = stage
        self.durables = durables
        self.venue = venue
        #: A warm standby is started and connected, then waits for `assign` to take a dead replica's
        #: consumers over: no process start, no imports, no connect on the recovery path.
        self.standby = standby
        self._assigned = asyncio.Event()
        self._consuming = asyncio.Event()
        self.loops: list[ConsumerLoop] = []
        self.faults = FaultPoints()
        self.handler: StageHandler | None = None
        self.breaker: VenueBreaker | None = None
        self.link: VenueLink | None = None
        self.alarms = Alarms(None, name)
        self.control = TradingControl()
        self.prices = ReferencePrices()
        self._control_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._risk_partitions: list[int] = []

    async def _build(self, nc: Any, js: Any) -> dict[str, tuple[StageHandler, Any, bool]]:
        """durable -> (handler, decoder or None, gated by the venue breaker); starts the watchers the
        handlers read (kill switch, reference prices) and rebuilds their state from the log first."""
        if self.stage == "allocator":
            handler = self.handler = AllocatorHandler(self.cfg)
            return {d: (handler, None, False) for d in self.durables}
        # The kill switch is applied before the first message is taken, then as each change arrives.
        loaded = asyncio.Event()
        self._tasks.append(asyncio.create_task(watch_control(js, self.control, loaded, self._control_changed.set,
                                                             self.alarms)))
        await asyncio.wait_for(loaded.wait(), 30)
        if self.stage == "risk":
            priced = asyncio.Event()
            self._tasks.append(asyncio.create_task(watch_reference_prices(js, self.prices, priced, self.alarms)))
            await asyncio.wait_for(priced.wait(), 30)
            specs = {s.durable: s for s in consumer_specs(self.cfg)}
            partitions = {specs[d].partition for d in self.durables if specs[d].partition is not None}
            states = await rebuild_risk_states(js, self.cfg, partitions)  # type: ignore[arg-type]
            handler = self.handler = RiskHandler(self.cfg, self.control, self.prices, states)
            self._risk_partitions = sorted(partitions)  # type: ignore[type-var]
            self._tasks.append(asyncio.create_task(self._snapshot_risk(js, handler, self._risk_partitions)))
            return {d: (handler, None, False) for d in self.durables}
        if self.stage == "gateway":
            assert self.venue is not None
            gw = self.cfg.stages.gateway
            self.breaker = VenueBreaker(nc, self.venue, gw.breaker.settings(gw.call_timeout))
            link = self.link = VenueLink(nc, self.venue, gw, self.breaker)
            waits = OrderWaits()
            orders = GatewayOrders(self.venue, on_change=waits.changed)
            placed = self.handler = GatewayHandler(link, orders, self.cfg.partitions, waits, Closures(js, self.venue),
                                                   self.control, self.alarms, self.faults)
            cancels = CancelHandler(link, orders, self.cfg.partitions)
            dropcopy = DropCopyHandler(link, orders, self.cfg.partitions, self.alarms)
            self._tasks.append(asyncio.create_task(self._sweep_halted(HaltSweeper(link, self.control))))
            built: dict[str, tuple[StageHandler, Any, bool]] = {}
            for d in self.durables:
                if d.endswith("-cancel"):
                    built[d] = (cancels, None, True)
                elif d.endswith("-dropcopy"):
                    built[d] = (dropcopy, decode_report, False)  # type: ignore[assignment]
                else:
                    built[d] = (placed, None, True)
            return built
        raise ValueError(f"unknown stage {self.stage}")

    async def _snapshot_risk(self, js: Any, handler: RiskHandler, partitions: list[int]) -> None:
        """Snapshot the owned partitions' risk state every few seconds when it changed, so the next
        owner replays only the log after it."""
        saved = handler.changes
        while True:
            await asyncio.sleep(RISK_SNAPSHOT_EVERY_S)
            if handler.changes == saved:
                continue
            try:
                saved = handler.changes
                await save_risk_snapshots(js, handler, partitions)
            except Exception as exc:  # the log still has everything; the next one is taken later
                log.warning("risk snapshot failed: %r", exc)

    async def _sweep_halted(self, sweeper: HaltSweeper) -> None:
        """Cancel working orders of halted accounts at once on a change, and again while it lasts."""
        while True:
            changed = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._control_changed.wait(), 1.0)
                changed = True
            self._control_changed.clear()
            try:
                await sweeper.sweep(force=changed)
            except Exception as exc:  # keep sweeping: a venue outage must not end the halt's cancels
                log.warning("halt sweep failed: %r", exc)

    async def _run(self) -> dict[str, Any]:
        specs = {s.durable: s for s in consumer_specs(self.cfg)}

        async def _woken() -> None:
            for loop in self.loops:
                loop.wake()
            if self.link is not None:
                self.link.wake()  # answers on the wire may be lost: every order waiting asks again now

        nc = await connect_retrying(self.cfg.nats.url, name=self.name, on_reconnected=_woken)
        js = nc.jetstream()
        if self.standby:
            self._ready.set()  # parked: connected, owning nothing
            await first_of(self._assigned, self._stop)
            if self._stop.is_set():
                with contextlib.suppress(Exception):
                    await nc.drain()
                return {}
        self.alarms = Alarms(nc, self.name)  # named after the child it is (a standby takes one's name)
        t_build = time.monotonic()
        built = await self._build(nc, js)
        built_s = time.monotonic() - t_build
        gate = None
        if self.breaker is not None:
            await self.breaker.start()
            breaker = self.breaker
            gate = lambda: breaker.wait_hint() if breaker.breaker.state is BreakerState.OPEN else 0.0  # noqa: E731
        seen = RecentIds()
        decider = Decider({"TransientError": Directive.RESUME, **self.cfg.supervision.deciders},
                          default=Directive.RESUME)
        self.loops = [ConsumerLoop(nc, js, specs[d].stream, d, built[d][0], specs[d].delivery, seen, self.faults,
                                   gate if built[d][2] else None, built[d][1], decider, specs[d].ack_all, self.alarms)
                      for d in self.durables]
        tasks = [asyncio.create_task(loop.run(), name=loop.durable) for loop in self.loops]
        log.info("%s consuming %s (state rebuilt in %.3fs)", self.name, ",".join(self.durables), built_s)
        self._ready.set()
        self._consuming.set()
        stop = asyncio.create_task(self._stop.wait())
        directed: Directed | None = None
        try:
            done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = None if task is stop else task.exception()
                if isinstance(error, Directed):
                    directed = error  # restart, stop or escalate: end normally and tell the supervisor why
                elif error is not None:
                    raise error
            for loop in self.loops:
                await loop.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(self.handler, RiskHandler):  # stopped cleanly: the next owner starts from here
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(save_risk_snapshots(js, self.handler, self._risk_partitions), 5.0)
        finally:
            for task in self._tasks:
                task.cancel()
            if self.breaker is not None:
                await self.breaker.stop()
            with contextlib.suppress(Exception):
                await nc.drain()
        if directed is not None:
            return {"directive": directed.directive, "error": f"{type(directed.cause).__name__}: {directed.cause}"}
        return self.stats()

    async def assign(self, name: str, durables: list[str], venue: str | None = None,
                     timeout: float = 30.0) -> dict[str, Any]:
        """Standby takes over: consume `durables` (a dead replica's partitions) from their positions."""
        if not self.standby or self._assigned.is_set():
            raise RuntimeError(f"{self.name} is not a free standby")
        self.name, self.durables, self.venue = name, durables, venue
        self._assigned.set()
        await asyncio.wait_for(self._consuming.wait(), timeout)
        return identity()

    def stats(self) -> dict[str, Any]:
        """Each consumer loop's counters, the alarms raised here by kind, and for a gateway its orders
        in doubt (may be at the venue, no answer yet) and the corrections it published."""
        out: dict[str, Any] = {loop.durable: vars(loop.stats).copy() for loop in self.loops}
        out[ALARMS_KEY] = dict(self.alarms.counts)
        if isinstance(self.handler, GatewayHandler):
            out[ORDERS_KEY] = {"in_doubt": len(self.handler.orders.in_doubt()),
                               "corrections": self.handler.orders.corrections}
        return out

    async def health(self) -> dict[str, int]:
        progress = sum(loop.stats.progress for loop in self.loops) + getattr(self.handler, "activity", 0)
        return {"progress": progress, "pending": sum(loop.pending() for loop in self.loops)}

    def arm_fault(self, name: str) -> None:
        """Park the loop at fault point `name` (see actors.runtime.faults) until disarmed or killed."""
        self.faults.arm(name)

    def arm_error(self, type_name: str, count: int = 1) -> None:
        """Make the next `count` messages this replica handles raise an exception whose class is named
        `type_name` (see actors.runtime.faults): a handler error the deciders act on."""
        self.faults.arm_error(type_name, count)

    def disarm_fault(self, name: str) -> None:
        self.faults.disarm(name)

    def faults_reached(self) -> dict[str, int]:
        return dict(self.faults.reached)


class PositionsWorker(WorkerBase):
    """The positions projection (event sourced from executions, with snapshots), and the watch of the
    broker's max-deliveries advisories (the last line of the dead letters: see actors.runtime.advisories)."""

    def __init__(self, cfg_json: str, name: str) -> None:
        super().__init__(cfg_json, name)
        self.projection: PositionsProjection | None = None
        self.advisories: ConsumerLoop | None = None
        self.alarms: Counter[str] = Counter()

    async def _run(self) -> dict[str, Any]:
        nc = await connect_retrying(self.cfg.nats.url, name=self.name, on_reconnected=self._wake_advisories)
        js = nc.jetstream()
        alarms = Alarms(nc, self.name)
        self.alarms = alarms.counts
        spec = next(s for s in consumer_specs(self.cfg) if s.durable == ADVISORIES_DURABLE)
        stage_of = {s.durable: s.stage for s in consumer_specs(self.cfg)}
        handler = MaxDeliveriesHandler(js, stage_of, alarms, nc.max_payload)
        self.advisories = ConsumerLoop(nc, js, spec.stream, spec.durable, handler, spec.delivery,
                                       decoder=decode_advisory, alarms=alarms)
        watch = asyncio.create_task(self.advisories.run(), name="advisories")
        try:
            self.projection = PositionsProjection(nc, js)
            await self.projection.start()
            self._ready.set()
            await first_of(self._stop, _done(watch))
            if watch.done() and watch.exception() is not None:
                raise watch.exception()  # type: ignore[misc]
            await self.projection.stop()
        finally:
            await self.advisories.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watch, 5.0)
            with contextlib.suppress(Exception):
                await nc.drain()
        return self.stats()

    async def _wake_advisories(self) -> None:
        if self.advisories is not None:
            self.advisories.wake()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.projection.seq if self.projection else 0, ALARMS_KEY: dict(self.alarms)}
        if self.advisories is not None:
            out[ADVISORIES_DURABLE] = vars(self.advisories.stats).copy()
        return out


def _done(task: asyncio.Task[None]) -> asyncio.Event:
    """An event set when `task` ends."""
    event = asyncio.Event()
    task.add_done_callback(lambda _t: event.set())
    return event
