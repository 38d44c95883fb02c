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

Per order that is 7 stored messages (relay: 4), 12 JetStream deliveries (relay: 4), and a core
request/reply. What the system adds on top is left out: envelope decoding and validation, dedupe and
the applied log, domain logic, one consumer per partition, replicas, Ray and supervision. So the
model's throughput is an upper bound for any implementation of this graph in nats-py on this machine,
and `system / graph` is the share of it the system's own code costs.

Each role is its own OS process (`python -m bench.graph --role R ...`), in its own session, as the
relay workers and the system's processes are; risk runs both of its consumers in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402
from nats.js.api import (  # noqa: E402
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from actors.pull import PullConsumer  # noqa: E402
from bench.relay import (  # noqa: E402
    MSG_ID,
    PUBLISH_TIMEOUT_S,
    RELAY_ID,
    Output,
    RelayDriver,
    Route,
    consume,
    new_stats,
    worker_process,
)
from cluster import event_loop  # noqa: E402

__all__ = ["ENTRY", "REJECT_EVERY", "ROLES", "SETTLE_ON", "WATCH", "ensure_graph_topology", "graph_driver"]

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

_STREAMS = {"G_RECEIVED": ENTRY, "G_APPROVED": APPROVED, "G_REJECTED": REJECTED, "G_EXEC": EXEC,
            "G_ALLOC": ALLOC, "G_DROPCOPY": DROPCOPY}
#: durable -> (stream, acks the whole batch at once)
_DURABLES = {"risk": ("G_RECEIVED", False), "risk-exec": ("G_EXEC", True), "gateway": ("G_APPROVED", False),
             "allocator": ("G_EXEC", False)}


async def ensure_graph_topology(js: JetStreamContext, max_bytes: int = 512 * 2**20) -> None:
    """The model's streams (the relay's stream settings) and its durable pull consumers."""
    for name, subject in _STREAMS.items():
        await js.add_stream(StreamConfig(
            name=name, subjects=[subject], retention=RetentionPolicy.LIMITS, storage=StorageType.FILE,
            num_replicas=1, max_bytes=max_bytes, discard=DiscardPolicy.NEW, duplicate_window=120.0))
    for durable, (stream, ack_all) in _DURABLES.items():
        await js.add_consumer(stream, ConsumerConfig(
            durable_name=durable, deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.ALL if ack_all else AckPolicy.EXPLICIT, ack_wait=5.0, max_deliver=5,
            max_ack_pending=1000, filter_subject=_STREAMS[stream], max_waiting=64))


def graph_driver(url: str, payload_bytes: int = 500) -> RelayDriver:
    """The relay's driver pointed at the model: every REJECT_EVERY-th probe is marked for rejection."""
    return RelayDriver(url, payload_bytes=payload_bytes, entry=ENTRY, settle_on=SETTLE_ON, watch=WATCH,
                       headers=lambda i: {REJECT: "1"} if i % REJECT_EVERY == REJECT_EVERY - 1 else {})


def _rid(m: Msg) -> str:
    return (m.headers or {}).get(RELAY_ID, "")


# ---- the roles ------------------------------------------------------------------------------------

def _risk(m: Msg) -> Output:
    rid = _rid(m)
    subject = REJECTED if (m.headers or {}).get(REJECT) else APPROVED
    return subject, m.data, {MSG_ID: f"{rid}.risk", RELAY_ID: rid}


async def _decide(msgs: list[Msg]) -> list[Output]:
    return [_risk(m) for m in msgs]


async def _fold(msgs: list[Msg]) -> list[Output]:
    return []


async def _allocate(msgs: list[Msg]) -> list[Output]:
    return [(ALLOC, m.data, {MSG_ID: f"{_rid(m)}.alloc", RELAY_ID: _rid(m)})
            for m in msgs if (m.headers or {}).get(KIND) == "F"]


def _gateway(nc: nats.NATS) -> Route:
    async def route(msgs: list[Msg]) -> list[Output]:
        await asyncio.gather(*(nc.request(SESSION, m.data, timeout=PUBLISH_TIMEOUT_S) for m in msgs))
        outputs = []
        for m in msgs:
            rid = _rid(m)
            for kind in ("A", "F"):  # accepted, filled: the two reports the venue answered with
                outputs.append((EXEC, m.data, {MSG_ID: f"{rid}.{kind}", RELAY_ID: rid, KIND: kind}))
        return outputs
    return route


async def run_role(url: str, role: str, ready: Path, batch: int, parent_pid: int) -> dict[str, int]:
    stats = new_stats()
    async with worker_process(url, f"graph-{role}", parent_pid) as (nc, stop):
        js = nc.jetstream()
        if role == "venue":
            async def _session(msg: Msg) -> None:
                rid = _rid(msg)
                acks = [await js.publish_async(DROPCOPY, msg.data, headers={MSG_ID: f"{rid}.{kind}"})
                        for kind in ("A", "F")]
                await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT_S)
                await msg.respond(msg.data)
                stats["relayed"] += 1

            await nc.subscribe(SESSION, cb=_session, pending_msgs_limit=-1, pending_bytes_limit=-1)
            ready.write_text(str(os.getpid()))
            await stop.wait()
            return stats
        if role == "positions":
            async def _project(msg: Msg) -> None:
                stats["relayed"] += 1

            await js.subscribe(EXEC, cb=_project, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                               idle_heartbeat=2.0)
            ready.write_text(str(os.getpid()))
            await stop.wait()
            return stats
        loops: list[tuple[str, Route]] = {
            "risk": [("risk", _decide), ("risk-exec", _fold)], "gateway": [("gateway", _gateway(nc))],
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
    args = parser.parse_args(argv)
    stats = event_loop.run(run_role(args.url, args.role, Path(args.ready), args.batch, args.parent_pid))
    print(json.dumps({"role": args.role, **stats}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
