"""A durable pull consumer as the runtime knows it: its stream, name, filter and delivery settings."""

from __future__ import annotations

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from actors.domain.settings import Settings
from actors.runtime.settings import DeliveryConfig

__all__ = ["DELIVERY_SLACK", "ConsumerSpec"]

#: Deliveries the broker allows beyond the handler attempts the consumer loop allows: the loop
#: dead-letters an input whose handler failed max_deliver times; the broker gives a message up only
#: well past that (a process that died on it each time), and its advisory is the last line.
DELIVERY_SLACK = 16


class ConsumerSpec(Settings):
    """A durable pull consumer: the committed position of one stage on one partition (or venue)."""

    stage: str
    #: The consumer's role in its stage (which of the stage's handlers takes its messages).
    role: str
    stream: str
    durable: str
    filter_subject: str
    partition: int | None = None
    venue: str | None = None
    delivery: DeliveryConfig = DeliveryConfig()
    #: One ack covers every earlier message (AckPolicy.ALL): for consumers whose handler only folds
    #: idempotently and never fails a message on its own (risk's view of the executions).
    ack_all: bool = False

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.ALL if self.ack_all else AckPolicy.EXPLICIT,
            ack_wait=self.delivery.ack_wait,
            max_deliver=self.delivery.max_deliver + DELIVERY_SLACK,
            max_ack_pending=self.delivery.max_ack_pending,
            filter_subject=self.filter_subject,
            max_waiting=64,
        )
