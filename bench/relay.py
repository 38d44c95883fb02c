"""A bare nats-py relay with the order path's shape, as the baseline the system is measured against.

    driver -> relay.in.1 -> worker 1 -> relay.in.2 -> worker 2 -> relay.in.3 -> worker 3 -> relay.out -> driver

Each `relay.in.<n>` subject has its own JetStream stream (file storage, limits retention, duplicate
window; the same settings the system's streams use) and one durable pull consumer (`relay-<n>`, the
same consumer settings the system's stages use). Each worker is its own OS process (run as
`python -m bench.relay --url ... --index n`): it takes messages with the continuous pull of
`actors.runtime.pull.PullConsumer` (the same one the stages use, batch 128), publishes each message to the
next stream with `publish_async` and a deterministic `Nats-Msg-Id`, awaits every publish ack, and
only then acks its input: the system's at-least-once shape without its decoding, dedupe, applied
log, domain logic, Ray or supervision. The driver publishes into `relay.in.1` with awaited acks
(as `TradingClient.submit` does) and an ordered push consumer on `relay.out` records each arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
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

from actors.runtime import event_loop  # noqa: E402
from actors.runtime.pull import PullConsumer  # noqa: E402
from cluster.client.pacing import retrying, send_paced  # noqa: E402

__all__ = ["HOPS", "OUT_SUBJECT", "Output", "RelayDriver", "Route", "add_durable", "add_stream", "consume",
           "ensure_relay_topology", "forward", "in_subject", "new_stats", "relay_id", "stream_name", "worker_process"]

HOPS = 3
OUT_SUBJECT = "relay.out"
OUT_STREAM = "RELAY_OUT"
MSG_ID = "Nats-Msg-Id"
RELAY_ID = "Relay-Id"
PUBLISH_TIMEOUT_S = 5.0


def in_subject(index: int) -> str:
    return f"relay.in.{index}"


def stream_name(index: int) -> str:
    return f"RELAY_IN_{index}"


def _next_subject(index: int, hops: int) -> str:
    return in_subject(index + 1) if index < hops else OUT_SUBJECT


STREAM_MAX_BYTES = 512 * 2**20


async def add_stream(js: JetStreamContext, name: str, subject: str, max_bytes: int = STREAM_MAX_BYTES) -> None:
    """A baseline's stream, with the settings the system's streams use (file storage, limits retention,
    the 2-minute duplicate window)."""
    await js.add_stream(StreamConfig(
        name=name, subjects=[subject], retention=RetentionPolicy.LIMITS, storage=StorageType.FILE,
        num_replicas=1, max_bytes=max_bytes, discard=DiscardPolicy.NEW, duplicate_window=120.0))


async def add_durable(js: JetStreamContext, stream: str, durable: str, subject: str, ack_all: bool = False) -> None:
    """A baseline's durable pull consumer, with the settings the system's stages use."""
    await js.add_consumer(stream, ConsumerConfig(
        durable_name=durable, deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.ALL if ack_all else AckPolicy.EXPLICIT, ack_wait=5.0, max_deliver=5,
        max_ack_pending=1000, filter_subject=subject, max_waiting=64))


async def ensure_relay_topology(js: JetStreamContext, hops: int = HOPS, max_bytes: int = STREAM_MAX_BYTES) -> None:
    """Streams relay.in.1..hops and relay.out, and a durable pull consumer on each relay.in stream."""
    streams = [(stream_name(i), in_subject(i)) for i in range(1, hops + 1)] + [(OUT_STREAM, OUT_SUBJECT)]
    for name, subject in streams:
        await add_stream(js, name, subject, max_bytes)
    for i in range(1, hops + 1):
        await add_durable(js, stream_name(i), f"relay-{i}", in_subject(i))


# ---- worker process -------------------------------------------------------------------------------

#: One message to publish: (subject, data, headers).
Output = tuple[str, bytes, dict[str, str]]
#: A worker's logic: a batch of input messages -> the messages to publish for them.
Route = Callable[[list[Msg]], Awaitable[list[Output]]]


def relay_id(m: Msg) -> str:
    """The probe a message carries (its Relay-Id header)."""
    return (m.headers or {}).get(RELAY_ID, "")


async def _nak_all(msgs: list[Msg]) -> None:
    """Nothing of the batch is acked: the broker redelivers it (republished with the same ids)."""
    for m in msgs:
        with contextlib.suppress(Exception):
            await m.nak(delay=0.1)


def new_stats() -> dict[str, int]:
    return {"relayed": 0, "batches": 0, "publish_failures": 0, "route_failures": 0, "redelivered": 0}


@contextlib.asynccontextmanager
async def worker_process(url: str, name: str, parent_pid: int) -> AsyncIterator[tuple[nats.NATS, asyncio.Event]]:
    """A worker's connection and its stop event, set by SIGTERM / SIGINT or when the benchmark process
    is gone without stopping us (do not linger); drains the connection at the end."""
    nc = await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def _orphaned() -> None:
        while os.getppid() == parent_pid:
            await asyncio.sleep(0.5)
        stop.set()

    watchdog = asyncio.create_task(_orphaned())
    try:
        yield nc, stop
    finally:
        watchdog.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), 5)


async def forward(js: JetStreamContext, msgs: list[Msg], outputs: list[Output], stats: dict[str, int],
                  ack_all: bool = False) -> None:
    """Publish `outputs` with `publish_async`, await every ack, and only then ack `msgs` (the last one
    alone when the consumer acks all). On a failure nothing is acked: the inputs are nak'ed, come back
    and are republished with the same message ids."""
    try:
        futures = [await js.publish_async(subject, data, headers=headers) for subject, data, headers in outputs]
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT_S)
    except Exception:
        stats["publish_failures"] += 1
        await _nak_all(msgs)
        return
    for m in msgs[-1:] if ack_all else msgs:
        with contextlib.suppress(Exception):
            await m.ack()
    stats["relayed"] += len(msgs)
    stats["batches"] += 1


async def consume(js: JetStreamContext, pull: PullConsumer, batch: int, route: Route, stop: asyncio.Event,
                  stats: dict[str, int], ack_all: bool = False) -> None:
    """Take batches from `pull` (started) until `stop`, route and forward them; then stop `pull` and
    nak what it still buffers."""
    try:
        while not stop.is_set():
            msgs = await pull.next_batch(batch, timeout=0.5)
            if not msgs:
                continue
            stats["redelivered"] += sum(1 for m in msgs if m.metadata.num_delivered > 1)
            try:
                outputs = await route(msgs)
            except Exception:
                stats["route_failures"] += 1
                await _nak_all(msgs)
                continue
            await forward(js, msgs, outputs, stats, ack_all)
    finally:
        for m in await pull.stop():
            with contextlib.suppress(Exception):
                await m.nak()


async def run_worker(url: str, index: int, hops: int, ready: Path, batch: int, parent_pid: int) -> dict[str, int]:
    out = _next_subject(index, hops)

    async def route(msgs: list[Msg]) -> list[Output]:
        outputs = []
        for m in msgs:
            rid = relay_id(m)
            outputs.append((out, m.data, {MSG_ID: f"{rid}.{index}", RELAY_ID: rid}))
        return outputs

    stats = new_stats()
    async with worker_process(url, f"relay-{index}", parent_pid) as (nc, stop):
        pull = PullConsumer(nc, stream_name(index), f"relay-{index}", batch=batch)
        await pull.start()
        ready.write_text(str(os.getpid()))
        await consume(nc.jetstream(), pull, batch, route, stop, stats)
    return stats


def worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description="one relay worker process")
    parser.add_argument("--url", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--hops", type=int, default=HOPS)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--ready", required=True, help="file written once the worker consumes")
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    args = parser.parse_args(argv)
    stats = event_loop.run(run_worker(args.url, args.index, args.hops, Path(args.ready), args.batch, args.parent_pid))
    print(json.dumps({"worker": args.index, **stats}), file=sys.stderr, flush=True)
    return 0


# ---- driver (in the benchmark process) ------------------------------------------------------------

class RelayDriver:
    """Sends probes into relay.in.1 (or `entry`) and records when each one comes out of relay.out
    (or any `settle_on` subject).

    Mirrors `cluster.client.load.run_load` + `TradingClient`: awaited publish per message, at most
    `concurrency` in flight, paced at `rate`/s (0 = as fast as the broker takes them);
    `placed_at` / `settled_at` hold monotonic ns per id, as the client's do.
    """

    def __init__(self, url: str, payload_bytes: int = 500, concurrency: int = 256,
                 publish_timeout: float = PUBLISH_TIMEOUT_S, entry: str = in_subject(1),
                 settle_on: tuple[str, ...] = (OUT_SUBJECT,), watch: tuple[str, ...] = (),
                 headers: Callable[[int], dict[str, str]] | None = None) -> None:
        """`entry`: where probes go in; a probe settles when it arrives on any `settle_on` subject;
        `watch` subjects are consumed too (as a client that follows every event does) without settling
        anything; `headers(i)` adds headers to probe i."""
        self.url = url
        self.entry = entry
        self.settle_on = settle_on
        self.watch = watch
        self.headers = headers
        self.payload_bytes = payload_bytes
        self.concurrency = concurrency
        self.publish_timeout = publish_timeout
        self.placed_at: dict[str, int] = {}
        self.settled_at: dict[str, int] = {}
        self.duplicated: set[str] = set()
        self.watched = 0
        self._pending: set[str] = set()
        self._all_settled = asyncio.Event()
        self._on_settled: Callable[[int], None] | None = None
        self._nc: nats.NATS | None = None

    async def __aenter__(self) -> RelayDriver:
        self._nc = await nats.connect(self.url, name="relay-driver", max_reconnect_attempts=-1,
                                      reconnect_time_wait=0.1)
        js = self._nc.jetstream()
        for subject in self.settle_on:
            await js.subscribe(subject, cb=self._arrived, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
                               idle_heartbeat=2.0)
        for subject in self.watch:
            await js.subscribe(subject, cb=self._watched, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
                               idle_heartbeat=2.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), 5)
            self._nc = None

    async def _watched(self, msg: nats.aio.msg.Msg) -> None:
        self.watched += 1

    async def _arrived(self, msg: nats.aio.msg.Msg) -> None:
        rid = (msg.headers or {}).get(RELAY_ID)
        if rid is None:
            return
        if rid in self.settled_at:
            self.duplicated.add(rid)
            return
        self.settled_at[rid] = time.monotonic_ns()
        if rid in self._pending:
            self._pending.discard(rid)
            if self._on_settled:
                self._on_settled(1)
            if not self._pending:
                self._all_settled.set()

    def payload(self, rid: str, seq: int) -> bytes:
        """A JSON envelope like the order's, padded to `payload_bytes`."""
        body = {"event_id": str(uuid.uuid4()), "type": "RelayProbe", "version": 1, "correlation_id": rid,
                "causation_id": None, "ts": time.time_ns(), "payload": {"seq": seq, "pad": ""}}
        raw = json.dumps(body, separators=(",", ":"))
        body["payload"]["pad"] = "x" * max(0, self.payload_bytes - len(raw))
        return json.dumps(body, separators=(",", ":")).encode()

    async def run(self, n: int, rate: float = 0.0, timeout: float = 60.0, run_id: str | None = None,
                  on_sent: Callable[[int], None] | None = None,
                  on_settled: Callable[[int], None] | None = None) -> tuple[list[str], int, int]:
        """Send `n` probes and wait for all of them (or `timeout`). Returns (ids, started_ns, sent_done_ns)."""
        assert self._nc is not None
        js = self._nc.jetstream()
        run = run_id or f"R{uuid.uuid4().hex[:10]}"
        ids = [f"{run}-{i:06d}" for i in range(n)]
        self._pending = set(ids)
        self._all_settled = asyncio.Event()
        self._on_settled = on_settled
        started = time.monotonic_ns()

        async def _send(i: int, rid: str) -> None:
            data = self.payload(rid, i)
            self.placed_at.setdefault(rid, time.monotonic_ns())
            headers = {MSG_ID: f"{rid}.0", RELAY_ID: rid, **(self.headers(i) if self.headers else {})}
            await retrying(lambda: js.publish(self.entry, data, timeout=self.publish_timeout, headers=headers),
                           timeout, (Exception,))
            if on_sent:
                on_sent(1)

        await send_paced(ids, _send, rate=rate, concurrency=self.concurrency)
        sent_done = time.monotonic_ns()
        for rid in ids:
            if rid in self.settled_at:
                self._pending.discard(rid)
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_settled.wait(), timeout)
        self._on_settled = None
        return ids, started, sent_done


if __name__ == "__main__":
    sys.exit(worker_main())
