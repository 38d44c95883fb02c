"""Idempotent JetStream bootstrap: every stream and durable consumer the config implies."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import (
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
from actors.runtime.consumer_spec import ConsumerSpec
from actors.runtime.control import CONTROL_BUCKET
from actors.runtime.refprices import REFPRICES_BUCKET
from actors.stages.gateway.closures import CLOSURES_BUCKET
from actors.stages.positions import POSITIONS_BUCKET
from actors.stages.risk_snapshots import RISK_BUCKET
from actors.stages.venue.snapshots import VENUE_SNAPSHOTS_BUCKET
from cluster import stages
from cluster.config import SystemConfig
from messages import subjects
from supervision.breaker_store import BREAKERS_BUCKET

__all__ = ["ADVISORIES_DURABLE", "ConsumerSpec", "consumer_specs", "duplicate_window", "ensure_topology",
           "stream_max_age", "stream_of", "stream_specs"]

#: The broker's duplicate window on streams whose copies nobody downstream needs to recognise.
SHORT_DUPLICATE_WINDOW_S = 120.0
#: Streams whose copies must be recognised for as long as the original is kept (see `duplicate_window`).
_ORDER_PATH = frozenset({"ORDERS_RECEIVED", "ORDERS_APPROVED", "ORDERS_REJECTED", "ORDERS_CANCEL", "EXECUTIONS",
                         "ALLOCATIONS", "DLQ", "VENUE"})
ADVISORIES_DURABLE = "dead-letters"
#: Streams no age limit may cut: a venue's input journal is its memory, trimmed only by the venue
#: itself up to a stored snapshot (see actors.stages.venue.book).
_NO_MAX_AGE = frozenset({"VENUE_INPUT"})


def stream_of(name: str) -> subjects.StreamSpec:
    for spec in stream_specs():
        if spec.name == name:
            return spec
    raise KeyError(name)


def consumer_specs(cfg: SystemConfig) -> list[ConsumerSpec]:
    """Every durable consumer of every registered stage (one per partition, or per venue, and
    consumer of its definition), and the watch of the broker's max-deliveries advisories."""
    specs: list[ConsumerSpec] = []
    for entry in stages.entries():
        defn = stages.definition(entry)
        delivery = entry.deployment(cfg).delivery
        scopes: list[dict[str, object]] = ([{"partition": p} for p in range(cfg.partitions)]
                                           if defn.scope == "partition" else [{"venue": v} for v in cfg.venues])
        for scope in scopes:
            for c in defn.consumes:
                specs.append(ConsumerSpec(stage=defn.name, role=c.role, stream=c.stream,
                                          durable=c.durable.format(**scope), filter_subject=c.subject.format(**scope),
                                          delivery=delivery, ack_all=c.ack_all, **scope))  # type: ignore[arg-type]
    specs.append(ConsumerSpec(stage="positions", role="advisories", stream=ADVISORIES_STREAM,
                              durable=ADVISORIES_DURABLE, filter_subject=ADVISORY_SUBJECTS,
                              delivery=cfg.stages.allocator.delivery))
    return specs


def stream_specs() -> list[subjects.StreamSpec]:
    """The system's streams, the advisories' and every registered stage's own."""
    own = [subjects.StreamSpec(name, subs) for e in stages.entries() for name, subs in stages.definition(e).streams]
    return [*subjects.STREAMS, subjects.StreamSpec(ADVISORIES_STREAM, (ADVISORY_SUBJECTS,)), *own]


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
    for spec in stream_specs():
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
