"""The consumer loop's deciders and its AckPolicy.ALL commits (in-memory broker, virtual time): a
decider's restart, stop or escalate ends `run()` with `Directed` and hands the batch back unacked;
resume dead-letters the input and goes on. With AckPolicy.ALL only the last message of a batch is
acked, and only when the whole batch is settled."""

from __future__ import annotations

import asyncio

import pytest

from actors.runtime.stage import Directed, Released
from supervision.decider import Decider, Directive
from tests.unit.test_consumer_loop_rig import ACK_WAIT, OK, POISON, TRANSIENT, Echo, Rig, virtual


def _deciding(directive: Directive) -> Decider:
    return Decider({ValueError: directive}, default=Directive.RESUME)


@virtual
async def test_resume_dead_letters_the_failed_input_and_the_loop_goes_on() -> None:
    async with Rig(Echo({"O-1": [POISON]}), decider=_deciding(Directive.RESUME)) as rig:
        failed = rig.publish("O-1")
        await rig.until(rig.settled, what="the failed input to be settled")
        after = rig.publish("O-2")
        await rig.until(rig.settled, what="the next input to be settled")
    assert [letter.reason for letter in rig.letters()] == ["handler_error"]
    assert rig.outputs() == ["O-2"] and rig.acks_of(failed) == 1 and rig.acks_of(after) == 1


@pytest.mark.parametrize("directive", [Directive.RESTART, Directive.STOP, Directive.ESCALATE])
@virtual
async def test_restart_stop_and_escalate_end_the_run_and_hand_the_batch_back_unacked(directive: Directive) -> None:
    rig = Rig(Echo({"O-2": [POISON]}), decider=_deciding(directive))
    seqs = [rig.publish(o) for o in ("O-1", "O-2", "O-3")]  # one batch: O-1 handled before O-2 fails
    run = asyncio.create_task(rig.loop.run())
    with pytest.raises(Directed) as raised:
        await asyncio.wait_for(run, 60)
    assert raised.value.directive == directive.value and isinstance(raised.value.cause, ValueError)
    assert rig.ops("ack") == [], "nothing of the batch acked"
    assert [rig.naks_of(s) for s in seqs] == [1, 1, 1], "the whole batch handed back at once"
    assert rig.outputs() == [] and rig.letters() == [], "nothing of the batch published"
    assert rig.consumer.info().num_ack_pending == 3, "the next owner gets all of it"


@virtual
async def test_a_directive_is_not_held_up_by_a_broker_that_refuses_an_earlier_batchs_commit() -> None:
    rig = Rig(Echo({"O-2": [POISON]}), decider=_deciding(Directive.RESTART), batch=1)
    rig.broker.fail_publishes("OUT", times=None)
    first, failed = rig.publish("O-1"), rig.publish("O-2")  # O-1's commit cannot finish; then O-2 fails
    clock = asyncio.get_running_loop()
    start = clock.time()
    with pytest.raises(Directed):
        await asyncio.wait_for(rig.loop.run(), 60)
    assert clock.time() - start < 2 * ACK_WAIT, "ended within the broker retry's grace"
    assert rig.acks_of(first) == rig.acks_of(failed) == 0 and rig.consumer.info().num_ack_pending == 2


@pytest.mark.parametrize("directive", [Directive.RESTART, Directive.STOP, Directive.ESCALATE])
@virtual
async def test_a_directive_for_a_transient_error_ends_the_run_too(directive: Directive) -> None:
    rig = Rig(Echo({"O-1": [TRANSIENT]}), decider=Decider({"TransientError": directive}))
    seq = rig.publish("O-1")
    with pytest.raises(Directed):
        await asyncio.wait_for(rig.loop.run(), 60)
    assert rig.acks_of(seq) == 0 and rig.naks_of(seq) == 1 and rig.handler.attempts["O-1"] == 1


@virtual
async def test_with_ack_all_a_settled_batch_is_acked_by_its_last_message_alone() -> None:
    async with Rig(ack_all=True) as rig:
        seqs = [rig.publish(o) for o in ("O-1", "O-2", "O-3")]
        await rig.until(rig.settled, what="the batch to be settled")
    assert [op.seq for op in rig.ops("ack")] == [seqs[-1]]
    assert rig.outputs() == ["O-1", "O-2", "O-3"]


@virtual
async def test_with_ack_all_a_transient_failure_is_retried_in_line_before_anything_after_it_is_acked() -> None:
    async with Rig(Echo({"O-2": [TRANSIENT, "ok"]}), ack_all=True) as rig:
        first, retried, last = (rig.publish(o) for o in ("O-1", "O-2", "O-3"))
        await rig.until(rig.settled, what="every input to be settled")
    assert [op.seq for op in rig.ops("ack")] == [last], "one ack, once O-2 succeeded, covers the batch"
    assert sorted(rig.outputs()) == ["O-1", "O-2", "O-3"], "each output stored once"
    assert rig.handler.attempts == {"O-1": 1, "O-2": 2, "O-3": 1}
    assert rig.deliveries_of(first) == rig.deliveries_of(retried) == rig.deliveries_of(last) == 1


@virtual
async def test_with_ack_all_an_input_waiting_for_its_retry_is_not_acked_by_a_later_batch() -> None:
    async with Rig(Echo({"O-1": [TRANSIENT, "ok"]}), ack_all=True, batch=1) as rig:
        rig.publish("O-1")
        rig.publish("O-2")
        await rig.until(rig.settled, what="both inputs to be settled")
        await asyncio.sleep(2 * ACK_WAIT)
    assert sorted(rig.outputs()) == ["O-1", "O-2"], "O-1 was retried and handled"


@virtual
async def test_an_input_its_handler_releases_is_handed_back_at_once_and_counts_toward_no_attempt() -> None:
    released = Released("stopping")
    async with Rig(Echo({"O-1": [released, released, released, released, OK]}), max_deliver=3) as rig:
        seq = rig.publish("O-1")
        await rig.until(lambda: rig.outputs() == ["O-1"], what="the input handled on its fifth delivery")
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.naks_of(seq) == 4 and rig.acks_of(seq) == 1
    assert rig.letters() == [], "more releases than max_deliver, and no dead letter"
    assert rig.loop.stats.released == 4 and rig.loop.stats.retried == 0


@virtual
async def test_with_ack_all_a_released_input_hands_its_whole_batch_back() -> None:
    async with Rig(Echo({"O-2": [Released("stopping"), OK]}), ack_all=True) as rig:
        seqs = [rig.publish(o) for o in ("O-1", "O-2", "O-3")]
        await rig.until(rig.settled, what="the batch to be settled")
    assert [rig.naks_of(s) for s in seqs] == [1, 1, 1]
    assert sorted(rig.outputs()) == ["O-1", "O-2", "O-3"] and rig.letters() == []
