"""A bare nats-py model of the system's whole message graph per order: the floor of the design.

The relay (`bench.relay`) has the order path's three stage hops and nothing else. The system moves
more messages per order than that: the venue's request/reply and its drop copy, two execution reports
per order, and four readers of each report. This model moves exactly those messages, with the same
JetStream settings and the same worker loop as the relay, and does nothing else with them:

    driver    -> g.received                                     stored, awaited ack (1 in 10 marked reject)
    risk      <- g.received -> g.approved, or g.rejected        stored; then ack
    gateway   <- g.approved -> core request on g.session; the reply's 2 reports -> 2 x g.exec; then ack
    venue     <- g.session (core): 2 reports -> g.dropcopy (stored, awaited) -> reply
    allocator <- g.exec: the fill -> g.alloc; ack each
    risk      <- g.exec, acking the whole batch at once (the system's executions fold does)
    positions <- g.exec through an ordered push consumer
    driver    <- g.exec (as a client that follows every event) and g.alloc / g.rejected (settles)

Per filled order that is 7 stored messages (relay: 4), 11 JetStream deliveries (relay: 4), and a core
request/reply. What the system adds on top is left out: envelope decoding and validation, dedupe and
the applied log, domain logic, one consumer per partition, replicas, Ray and supervision. So the
model's throughput bounds what an implementation of this graph can reach on the machine with the same
nats-py worker loop and stream settings, and `system / graph` is the share of it the system's own code
leaves. `Shape` changes the flow as a change to the design would (bench/shapes.py measures the shapes).

Each role is its own OS process (`python -m bench.graph --role R ...`), in its own session, as the
relay workers and the system's processes are; risk runs both of its consumers in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402
from nats.js.api import DeliverPolicy  # noqa: E402

from actors.runtime import event_loop  # noqa: E402
from actors.runtime.pull import PullConsumer  # noqa: E402
from bench.relay import (  # noqa: E402
    MSG_ID,
    PUBLISH_TIMEOUT_S,
    RELAY_ID,
    Output,
    RelayDriver,
    Route,
    add_durable,
    add_stream,
    consume,
    new_stats,
    relay_id,
    worker_process,
)

__all__ = ["ENTRY", "FULL", "REJECT_EVERY", "ROLES", "SETTLE_ON", "WATCH", "Shape", "ensure_graph_topology",
           "graph_driver"]

ENTRY = "g.received"
APPROVED = "g.approved"
REJECTED = "g.rejected"
EXEC = "g.exec"
ALLOC = "g.alloc"
DROPCOPY = "g.dropcopy"
SESSION = "g.session"
SETTLE_ON = (ALLOC, REJECTED)
WATCH = (EXEC,)
#: One probe in this many is rejected by risk, about the share the benchmark's order mix has (~10%).
REJECT_EVERY = 10
REJECT = "Graph-Reject"
KIND = "Graph-Kind"
ROLES = ("risk", "gateway", "venue", "allocator", "positions")


@dataclass(frozen=True)
class Shape:
    """What the model moves per order. The default is the system's graph; the others estimate what a
    change to the design's message flow would buy (bench/shapes.py measures them side by side).

    Written as `full` or as flags joined by `+`: `exec1` (one execution message per venue reply
    instead of accepted + filled), `dc1` (one drop-copy record per reply), `nowatch` (the client
    takes only outcomes, not every execution), `nopos` (no separate positions reader)."""

    exec_reports: int = 2
    dropcopy_records: int = 2
    client_watches_executions: bool = True
    positions_consumer: bool = True

    @classmethod
    def parse(cls, text: str) -> Shape:
        flags = {f for f in text.split("+") if f and f != "full"}
        unknown = flags - {"exec1", "dc1", "nowatch", "nopos"}
        if unknown:
            raise ValueError(f"unknown graph shape flag(s) {', '.join(sorted(unknown))}: "
                             "use full, or exec1, dc1, nowatch, nopos joined by '+'")
        return cls(exec_reports=1 if "exec1" in flags else 2, dropcopy_records=1 if "dc1" in flags else 2,
                   client_watches_executions="nowatch" not in flags, positions_consumer="nopos" not in flags)

    @property
    def name(self) -> str:
        flags = [flag for flag, on in (("exec1", self.exec_reports == 1), ("dc1", self.dropcopy_records == 1),
                                       ("nowatch", not self.client_watches_executions),
                                       ("nopos", not self.positions_consumer)) if on]
        return "+".join(flags) or "full"

    @property
    def exec_kinds(self) -> tuple[str, ...]:
        """The execution messages of one order: accepted and filled, or the fill alone."""
        return ("A", "F") if self.exec_reports == 2 else ("F",)

    @property
    def dropcopy_kinds(self) -> tuple[str, ...]:
        return ("A", "F") if self.dropcopy_records == 2 else ("F",)

    def stored_per_order(self) -> int:
        """Stored messages per (filled) order: received, approved, drop copy, executions, allocation."""
        return 3 + self.dropcopy_records + self.exec_reports

    def deliveries_per_order(self) -> int:
        """JetStream deliveries per (filled) order: risk, gateway, the executions' readers, the client."""
        readers = 2 + self.positions_consumer + self.client_watches_executions  # risk, allocator, ...
        return 2 + readers * self.exec_reports + 1


FULL = Shape()

_STREAMS = {"G_RECEIVED": ENTRY, "G_APPROVED": APPROVED, "G_REJECTED": REJECTED, "G_EXEC": EXEC,
            "G_ALLOC": ALLOC, "G_DROPCOPY": DROPCOPY}
#: durable -> (stream, acks the whole batch at once)
_DURABLES = {"risk": ("G_RECEIVED", False), "risk-exec": ("G_EXEC", True), "gateway": ("G_APPROVED", False),
             "allocator": ("G_EXEC", False)}


async def ensure_graph_topology(js: JetStreamContext) -> None:
    """The model's streams and durable pull consumers, with the relay's settings."""
    for name, subject in _STREAMS.items():
        await add_stream(js, name, subject)
    for durable, (stream, ack_all) in _DURABLES.items():
        await add_durable(js, stream, durable, _STREAMS[stream], ack_all)


def graph_driver(url: str, payload_bytes: int = 500, shape: Shape = FULL) -> RelayDriver:
    """The relay's driver pointed at the model: every REJECT_EVERY-th probe is marked for rejection."""
    return RelayDriver(url, payload_bytes=payload_bytes, entry=ENTRY, settle_on=SETTLE_ON,
                       watch=WATCH if shape.client_watches_executions else (),
                       headers=lambda i: {REJECT: "1"} if i % REJECT_EVERY == REJECT_EVERY - 1 else {})


# ---- the roles ------------------------------------------------------------------------------------

def _risk(m: Msg) -> Output:
    rid = relay_id(m)
    subject = REJECTED if (m.headers or {}).get(REJECT) else APPROVED
    return subject, m.data, {MSG_ID: f"{rid}.risk", RELAY_ID: rid}


async def _decide(msgs: list[Msg]) -> list[Output]:
    return [_risk(m) for m in msgs]


async def _fold(msgs: list[Msg]) -> list[Output]:
    return []


async def _allocate(msgs: list[Msg]) -> list[Output]:
    return [(ALLOC, m.data, {MSG_ID: f"{relay_id(m)}.alloc", RELAY_ID: relay_id(m)})
            for m in msgs if (m.headers or {}).get(KIND) == "F"]


def _gateway(nc: nats.NATS, shape: Shape) -> Route:
    async def route(msgs: list[Msg]) -> list[Output]:
        await asyncio.gather(*(nc.request(SESSION, m.data, timeout=PUBLISH_TIMEOUT_S) for m in msgs))
        outputs = []
        for m in msgs:
            rid = relay_id(m)
            for kind in shape.exec_kinds:  # the reports the venue answered with
                outputs.append((EXEC, m.data, {MSG_ID: f"{rid}.{kind}", RELAY_ID: rid, KIND: kind}))
        return outputs
    return route


async def run_role(url: str, role: str, ready: Path, batch: int, parent_pid: int,
                   shape: Shape = FULL) -> dict[str, int]:
    stats = new_stats()
    async with worker_process(url, f"graph-{role}", parent_pid) as (nc, stop):
        js = nc.jetstream()
        if role == "venue":
            confirming: set[asyncio.Task[None]] = set()

            async def _confirm(msg: Msg, acks: list[asyncio.Future[Any]]) -> None:
                await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT_S)
                await msg.respond(msg.data)
                stats["relayed"] += 1

            async def _session(msg: Msg) -> None:
                # Requests are journaled one at a time, in arrival order (this callback runs one at a
                # time); each reply waits for its own journal acks in a task, as the system's venue does.
                rid = relay_id(msg)
                acks = [await js.publish_async(DROPCOPY, msg.data, headers={MSG_ID: f"{rid}.{kind}"})
                        for kind in shape.dropcopy_kinds]
                task = asyncio.create_task(_confirm(msg, acks))
                confirming.add(task)
                task.add_done_callback(confirming.discard)

            await nc.subscribe(SESSION, cb=_session, pending_msgs_limit=-1, pending_bytes_limit=-1)
            ready.write_text(str(os.getpid()))
            await stop.wait()
            return stats
        if role == "positions":
            async def _project(msg: Msg) -> None:
                stats["relayed"] += 1

            if shape.positions_consumer:
                await js.subscribe(EXEC, cb=_project, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                                   idle_heartbeat=2.0)
            ready.write_text(str(os.getpid()))
            await stop.wait()
            return stats
        loops: list[tuple[str, Route]] = {
            "risk": [("risk", _decide), ("risk-exec", _fold)], "gateway": [("gateway", _gateway(nc, shape))],
            "allocator": [("allocator", _allocate)]}[role]
        pulls = []
        for durable, route in loops:
            pull = PullConsumer(nc, _DURABLES[durable][0], durable, batch=batch)
            await pull.start()
            pulls.append((pull, route, _DURABLES[durable][1]))
        ready.write_text(str(os.getpid()))
        await asyncio.gather(*(consume(js, pull, batch, route, stop, stats, ack_all) for pull, route, ack_all in pulls))
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.graph", description="one process of the graph model")
    parser.add_argument("--url", required=True)
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--ready", required=True, help="file written once the process consumes")
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    parser.add_argument("--shape", default="full", type=Shape.parse, help="full, or flags joined by '+'")
    args = parser.parse_args(argv)
    stats = event_loop.run(run_role(args.url, args.role, Path(args.ready), args.batch, args.parent_pid,
                                    args.shape))
    print(json.dumps({"role": args.role, **stats}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
