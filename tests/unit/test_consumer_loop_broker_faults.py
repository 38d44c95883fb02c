"""The consumer loop when the broker fails (in-memory broker, virtual time): a store refused or not
answered, the applied log unreadable or unwritable. None of it is the input's fault: the input is
held in progress and retried until the broker takes it, never nak'ed, and no delivery is used up."""

from __future__ import annotations

import asyncio

from actors.runtime.applied import APPLIED_BUCKET
from tests.unit.test_consumer_loop_rig import ACK_WAIT, Rig, virtual

#: Long enough for the broker to have redelivered an input nobody kept in progress, several times over.
WELL_PAST_THE_ACK_WAIT = 4 * ACK_WAIT


@virtual
async def test_an_output_a_full_stream_refuses_holds_its_input_in_progress_until_the_stream_takes_it() -> None:
    async with Rig() as rig:
        rig.broker.streams["OUT"].max_msgs = 0  # full, discard new: every store refused
        seq = rig.publish("O-1")
        await rig.until(lambda: rig.loop.stats.publish_failures >= 3, what="refused stores")
        await asyncio.sleep(WELL_PAST_THE_ACK_WAIT)
        assert rig.held(seq) and rig.deliveries_of(seq) == 1, "held, not redelivered"
        assert any(op.seq == seq for op in rig.ops("in_progress")), "kept in progress at the broker"
        rig.broker.streams["OUT"].max_msgs = -1
        await rig.until(rig.settled, what="the input to be acked once the stream takes its output")
    assert rig.outputs() == ["O-1"] and rig.acks_of(seq) == 1
    assert rig.naks_of(seq) == 0 and rig.deliveries_of(seq) == 1 and rig.handler.attempts["O-1"] == 1
    assert rig.loop.stats.dead_lettered == 0


@virtual
async def test_a_broker_that_refuses_for_five_seconds_raises_one_alarm() -> None:
    async with Rig() as rig:
        rig.broker.fail_publishes("OUT", times=None)
        rig.publish("O-1")
        await asyncio.sleep(WELL_PAST_THE_ACK_WAIT)
        rig.broker.heal()
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.alarms.counts["broker_refuses"] == 1


@virtual
async def test_an_output_whose_store_is_not_answered_is_stored_again_and_the_stream_drops_the_copy() -> None:
    async with Rig() as rig:
        rig.broker.time_out_publishes("OUT", times=2, stored=True)  # stored, but the answers are lost
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.outputs() == ["O-1"], "one copy: the same Nats-Msg-Id each time"
    assert len(rig.ops("duplicate", "OUT")) == 2
    assert rig.acks_of(seq) == 1 and rig.naks_of(seq) == 0 and rig.deliveries_of(seq) == 1


@virtual
async def test_an_applied_log_that_cannot_be_written_holds_the_input_until_the_mark_is_stored() -> None:
    async with Rig() as rig:
        rig.broker.kv_unavailable(APPLIED_BUCKET)
        seq = rig.publish("O-1")
        await rig.until(lambda: rig.loop.stats.publish_failures >= 3, what="failed marks")
        await asyncio.sleep(WELL_PAST_THE_ACK_WAIT)
        assert rig.acks_of(seq) == 0, "not acked before its mark"
        assert rig.held(seq) and rig.deliveries_of(seq) == 1, "held, not redelivered"
        rig.broker.heal()
        await rig.until(rig.settled, what="the input to be acked once it is marked")
    assert rig.outputs() == ["O-1"] and len(rig.broker.stored("KV_APPLIED")) == 1
    assert rig.acks_of(seq) == 1 and rig.naks_of(seq) == 0 and rig.deliveries_of(seq) == 1


@virtual
async def test_an_applied_log_that_cannot_be_read_holds_a_redelivered_input_until_it_can() -> None:
    rig = Rig()
    seq = rig.publish("O-1")
    rig.consumer.take(1)  # an earlier process took it and died: it comes back redelivered
    rig.broker.kv_unavailable(APPLIED_BUCKET)
    async with rig:
        await rig.until(lambda: rig.loop.stats.publish_failures >= 3, what="failed applied-log reads")
        await asyncio.sleep(WELL_PAST_THE_ACK_WAIT)
        assert rig.handler.attempts["O-1"] == 0, "not handled before it is known whether it was applied"
        assert rig.held(seq) and rig.deliveries_of(seq) == 2, "held in progress, not redelivered again"
        rig.broker.heal()
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.handler.attempts["O-1"] == 1 and rig.outputs() == ["O-1"]
    assert rig.acks_of(seq) == 1 and rig.naks_of(seq) == 0


@virtual
async def test_a_dead_letter_the_broker_refuses_holds_its_input_like_any_output() -> None:
    async with Rig() as rig:
        rig.broker.fail_publishes("DLQ", times=None)
        seq = rig.publish("O-1", data=b"not an envelope")
        await asyncio.sleep(WELL_PAST_THE_ACK_WAIT)
        assert rig.held(seq) and rig.letters() == []
        rig.broker.heal()
        await rig.until(rig.settled, what="the input to be settled")
    assert len(rig.letters()) == 1 and rig.acks_of(seq) == 1 and rig.deliveries_of(seq) == 1


@virtual
async def test_inputs_waiting_in_the_pull_buffer_behind_a_slow_broker_are_kept_in_progress_too() -> None:
    orders = [f"O-{n}" for n in range(8)]
    async with Rig(batch=1, prefetch=True) as rig:  # takes 4 batches ahead of its commits, then waits
        rig.broker.fail_publishes("OUT", times=None)
        seqs = [rig.publish(o) for o in orders]
        await rig.until(lambda: rig.loop._pull.buffered() == 1, what="an input to wait in the pull buffer")
        await asyncio.sleep(WELL_PAST_THE_ACK_WAIT)
        assert rig.loop._pull.buffered() == 1
        assert [rig.deliveries_of(s) for s in seqs if rig.deliveries_of(s)] == [1] * 6, "none redelivered"
        rig.broker.heal()
        await rig.until(rig.settled, what="every input to be settled")
    assert rig.outputs() == orders and all(rig.acks_of(s) == 1 and rig.deliveries_of(s) == 1 for s in seqs)


@virtual
async def test_stopping_while_the_broker_refuses_leaves_the_input_unsettled_for_the_next_consumer() -> None:
    rig = Rig()
    rig.broker.fail_publishes("OUT", times=None)
    async with rig:
        seq = rig.publish("O-1")
        await rig.until(lambda: rig.loop.stats.publish_failures >= 1, what="a refused store")
    assert rig.task is not None and rig.task.done()
    assert rig.acks_of(seq) == 0 and rig.consumer.info().num_ack_pending == 1, "neither acked nor given up"
    rig.broker.heal()
    async with Rig(broker=rig.broker) as second:  # the next owner: it gets the input once its ack wait is over
        await second.until(second.settled, what="the input to be settled by the next owner")
    assert second.outputs() == ["O-1"] and second.acks_of(seq) == 1
