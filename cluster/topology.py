"""Idempotent JetStream bootstrap: every stream and durable consumer the config implies."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from actors.runtime.advisories import ADVISORIES_STREAM, ADVISORY_SUBJECTS
from actors.runtime.applied import APPLIED_BUCKET
from actors.runtime.control import CONTROL_BUCKET
from actors.runtime.loop import DELIVERY_SLACK
from actors.runtime.refprices import REFPRICES_BUCKET
from actors.stages.gateway.closures import CLOSURES_BUCKET
from actors.stages.positions import POSITIONS_BUCKET
from actors.stages.risk import RISK_BUCKET
from actors.stages.venue.snapshots import VENUE_SNAPSHOTS_BUCKET
from cluster.config import DeliveryConfig, SystemConfig
from messages import subjects
from supervision.breaker_store import BREAKERS_BUCKET

__all__ = ["ADVISORIES_DURABLE", "ConsumerSpec", "consumer_specs", "duplicate_window", "ensure_topology",
           "stream_max_age", "stream_of"]

#: The broker's duplicate window on streams whose copies nobody downstream needs to recognise.
SHORT_DUPLICATE_WINDOW_S = 120.0
#: Streams whose copies must be recognised for as long as the original is kept (see `duplicate_window`).
_ORDER_PATH = frozenset({"ORDERS_RECEIVED", "ORDERS_APPROVED", "ORDERS_REJECTED", "ORDERS_CANCEL", "EXECUTIONS",
                         "ALLOCATIONS", "DLQ", "VENUE"})
ADVISORIES_DURABLE = "dead-letters"
#: Streams no age limit may cut: a venue's input journal is its memory, trimmed only by the venue
#: itself up to a stored snapshot (see actors.stages.venue.book).
_NO_MAX_AGE = frozenset({"VENUE_INPUT"})


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer: the committed position of one stage on one partition."""

    stage: str
    stream: str
    durable: str
    filter_subject: str
    partition: int | None
    delivery: DeliveryConfig
    #: One ack covers every earlier message (AckPolicy.ALL): for consumers whose handler only folds
    #: idempotently and never fails a message on its own (risk's view of the executions).
    ack_all: bool = False

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.ALL if self.ack_all else AckPolicy.EXPLICIT,
            ack_wait=self.delivery.ack_wait,
            # The loop dead-letters an input whose handler failed max_deliver times; the broker gives a
            # message up only well past that (a process dying on it each time): see actors.runtime.advisories.
            max_deliver=self.delivery.max_deliver + DELIVERY_SLACK,
            max_ack_pending=self.delivery.max_ack_pending,
            filter_subject=self.filter_subject,
            max_waiting=64,
        )


def stream_of(name: str) -> subjects.StreamSpec:
    for spec in subjects.STREAMS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def consumer_specs(cfg: SystemConfig) -> list[ConsumerSpec]:
    """Risk and allocator consume one durable per partition; each gateway its venue's subjects.

    Risk also folds its partitions' executions (positions and working orders for its limits); a
    gateway takes its venue's cancel requests and the venue's own record (the drop copy), from which
    every execution event is published. One durable watches the broker's max-deliveries advisories."""
    specs: list[ConsumerSpec] = []
    for p in range(cfg.partitions):
        specs.append(ConsumerSpec("risk", "ORDERS_RECEIVED", f"risk-p{p}", subjects.orders_received(p), p,
                                  cfg.stages.risk.delivery))
        specs.append(ConsumerSpec("risk", "EXECUTIONS", f"risk-exec-p{p}", subjects.executions("*", p), p,
                                  cfg.stages.risk.delivery, ack_all=True))
    for venue in cfg.venues:
        specs.append(ConsumerSpec("gateway", "ORDERS_APPROVED", f"gateway-{venue}",
                                  subjects.orders_approved(venue), None, cfg.stages.gateway.delivery))
        specs.append(ConsumerSpec("gateway", "ORDERS_CANCEL", f"gateway-{venue}-cancel",
                                  subjects.orders_cancel(venue), None, cfg.stages.gateway.delivery))
        specs.append(ConsumerSpec("gateway", "VENUE", f"gateway-{venue}-dropcopy",
                                  subjects.venue_dropcopy(venue), None, cfg.stages.gateway.delivery))
    for p in range(cfg.partitions):
        specs.append(ConsumerSpec("allocator", "EXECUTIONS", f"allocator-p{p}",
                                  subjects.executions("*", p), p, cfg.stages.allocator.delivery))
    specs.append(ConsumerSpec("positions", ADVISORIES_STREAM, ADVISORIES_DURABLE, ADVISORY_SUBJECTS, None,
                              cfg.stages.allocator.delivery))
    return specs


def stream_max_age(cfg: SystemConfig, stream: str) -> float:
    """How long a stream keeps a message (0: no age limit). Every stream keeps `nats.max_age` but the
    venues' input journal, which its venue trims itself, and only up to a snapshot."""
    return 0.0 if stream in _NO_MAX_AGE else cfg.nats.max_age


def duplicate_window(cfg: SystemConfig, stream: str) -> float:
    """The broker drops a message whose Nats-Msg-Id it stored within this window. On the order path it
    is the streams' retention (`nats.duplicate_window`, default max_age): every event id derives from
    what caused it, so a copy of an old event (a re-placed order id, an output republished after a long
    outage) is dropped for as long as the original is kept, and no stage needs a memory of its own.
    The window never exceeds the stream's own max age when it has one (the broker refuses that)."""
    if stream not in _ORDER_PATH:
        return SHORT_DUPLICATE_WINDOW_S
    window = cfg.nats.duplicate_window if cfg.nats.duplicate_window is not None else cfg.nats.max_age
    max_age = stream_max_age(cfg, stream)
    if max_age:
        window = min(window, max_age)
    return window or SHORT_DUPLICATE_WINDOW_S


async def ensure_topology(js: JetStreamContext, cfg: SystemConfig) -> None:
    """Create or update every stream and consumer; safe to run any number of times."""
    for spec in (*subjects.STREAMS, subjects.StreamSpec(ADVISORIES_STREAM, (ADVISORY_SUBJECTS,))):
        stream_cfg = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=cfg.nats.stream_replicas,
            max_age=stream_max_age(cfg, spec.name),
            max_bytes=cfg.nats.max_bytes,
            discard=DiscardPolicy.NEW,
            duplicate_window=duplicate_window(cfg, spec.name),
        )
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(stream_cfg)
        else:
            await js.update_stream(stream_cfg)
    for cspec in consumer_specs(cfg):
        await js.add_consumer(cspec.stream, cspec.config())
    buckets = (
        (APPLIED_BUCKET, 1, cfg.nats.max_age, "inputs each consumer applied (sequence ranges)"),
        (POSITIONS_BUCKET, 5, 0.0, "positions projection snapshots"),
        (BREAKERS_BUCKET, 10, 0.0, "circuit breaker state per venue"),
        (CONTROL_BUCKET, 64, 0.0, "trading states (kill switch), with history"),
        (REFPRICES_BUCKET, 1, 0.0, "reference prices per venue and symbol"),
        ("SUPERVISION", 5, 0.0, "the supervision tree's state: child actor names and counters"),
        (RISK_BUCKET, 1, 0.0, "risk partition snapshots with the stream positions they cover"),
        (CLOSURES_BUCKET, 1, cfg.nats.max_age, "orders a gateway closed without the venue (never sent)"),
    )
    for bucket, history, ttl, description in buckets:
        await _ensure_bucket(js, KeyValueConfig(bucket=bucket, history=history, ttl=ttl or None,
                                                max_bytes=cfg.nats.max_bytes, storage=StorageType.FILE,
                                                replicas=cfg.nats.stream_replicas, description=description))
    await _ensure_object_store(js, ObjectStoreConfig(
        bucket=VENUE_SNAPSHOTS_BUCKET, description="venue simulator snapshots (the journal record each covers)",
        max_bytes=cfg.nats.max_bytes, storage=StorageType.FILE, replicas=cfg.nats.stream_replicas))


async def _ensure_object_store(js: JetStreamContext, config: ObjectStoreConfig) -> None:
    assert config.bucket is not None
    try:
        await js.object_store(config.bucket)
    except BucketNotFoundError:
        await js.create_object_store(config.bucket, config)


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    try:
        await js.key_value(config.bucket)
    except BucketNotFoundError:
        await js.create_key_value(config)
