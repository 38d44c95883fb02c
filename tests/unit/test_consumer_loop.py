"""The consumer loop on an in-memory broker (no server, virtual time): what it handles, skips and
dead-letters, and the order in which it commits. Broker failures, directives and AckPolicy.ALL are in
the sibling files test_consumer_loop_*.py; the rig is test_consumer_loop_rig.py."""

from __future__ import annotations

import asyncio

from actors.runtime.applied import REPLAY_HEADER, REPLAY_OF_HEADER, Applied
from actors.runtime.loop import RecentIds
from tests.unit.test_consumer_loop_rig import (
    BIG,
    DUPLICATE_WINDOW,
    NONE,
    POISON,
    TRANSIENT,
    Echo,
    Rig,
    envelope_of,
    virtual,
)


async def _mark_applied(rig: Rig, *items: Applied) -> None:
    """What an earlier process left: these inputs marked applied in the bucket."""
    await rig.loop._applied.mark(list(items), timeout=5)


@virtual
async def test_an_input_is_handled_its_output_stored_and_the_input_acked_once() -> None:
    async with Rig() as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.outputs() == ["O-1"]
    assert rig.acks_of(seq) == 1 and rig.naks_of(seq) == 0
    assert rig.loop.stats.handled == 1 and rig.loop.stats.published == 1


@virtual
async def test_a_redelivered_input_already_applied_is_acked_without_being_handled() -> None:
    rig = Rig()
    seq = rig.publish("O-1")
    (first,) = rig.consumer.take(1)  # an earlier process took it, stored its output and marked it; then died
    await _mark_applied(rig, Applied(str(envelope_of("O-1").event_id), seq))
    async with rig:
        await rig.until(rig.settled, what="the redelivered input to be settled")
    assert first.metadata.num_delivered == 1 and rig.deliveries_of(seq) == 2
    assert rig.handler.attempts["O-1"] == 0, "found in the applied log: not handled again"
    assert rig.loop.stats.duplicates_skipped == 1 and rig.acks_of(seq) == 1


@virtual
async def test_a_redelivered_input_not_yet_applied_is_handled() -> None:
    rig = Rig()
    seq = rig.publish("O-1")
    rig.consumer.take(1)  # an earlier process took it and died before storing anything
    async with rig:
        await rig.until(rig.settled, what="the redelivered input to be settled")
    assert rig.handler.attempts["O-1"] == 1 and rig.outputs() == ["O-1"] and rig.acks_of(seq) == 1
    assert rig.handler.metas[0][1].redelivered


@virtual
async def test_an_event_id_seen_before_is_acked_without_being_handled() -> None:
    seen = RecentIds()
    seen.add(str(envelope_of("O-1").event_id))
    async with Rig(seen=seen) as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.handler.attempts["O-1"] == 0 and rig.outputs() == []
    assert rig.loop.stats.duplicates_skipped == 1 and rig.acks_of(seq) == 1


@virtual
async def test_a_copy_of_an_event_stored_past_the_duplicate_window_is_acked_without_being_handled() -> None:
    async with Rig() as rig:
        first = rig.publish("O-1")
        await rig.until(rig.settled, what="the first copy to be settled")
        assert rig.publish("O-1") == first, "within its duplicate window the stream drops a copy itself"
        await asyncio.sleep(DUPLICATE_WINDOW)
        copy = rig.publish("O-1")
        await rig.until(rig.settled, what="the copy to be settled")
    assert copy != first, "past the window the stream stores it: the loop knows it by its event id"
    assert rig.handler.attempts["O-1"] == 1 and rig.loop.stats.duplicates_skipped == 1
    assert rig.acks_of(copy) == 1 and rig.outputs() == ["O-1"]


@virtual
async def test_a_transient_error_is_retried_with_backoff_and_then_handled() -> None:
    async with Rig(Echo({"O-1": [TRANSIENT, TRANSIENT, "ok"]}), max_deliver=3) as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    assert [op.detail for op in rig.ops("nak")] == ["0.1", "0.2"], "nak'ed with the configured backoff"
    assert rig.handler.attempts["O-1"] == 3 and rig.outputs() == ["O-1"] and rig.letters() == []
    assert rig.acks_of(seq) == 1


@virtual
async def test_a_transient_error_on_every_attempt_is_dead_lettered_after_max_deliver_attempts() -> None:
    async with Rig(Echo({"O-1": [TRANSIENT]}), max_deliver=3) as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    (letter,) = rig.letters()
    assert (letter.reason, letter.deliveries, letter.order_id) == ("max_deliveries", 3, "O-1")
    assert "TransientError" in letter.error and letter.original_stream_seq == seq
    assert rig.handler.attempts["O-1"] == 3 and rig.naks_of(seq) == 2 and rig.acks_of(seq) == 1
    assert rig.outputs() == []


@virtual
async def test_a_poison_error_is_dead_lettered_at_once() -> None:
    async with Rig(Echo({"O-1": [POISON]})) as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    (letter,) = rig.letters()
    assert (letter.reason, letter.deliveries) == ("handler_error", 1) and "ValueError" in letter.error
    assert rig.handler.attempts["O-1"] == 1 and rig.naks_of(seq) == 0 and rig.acks_of(seq) == 1


@virtual
async def test_an_undecodable_message_is_dead_lettered_with_its_decode_error() -> None:
    async with Rig() as rig:
        seq = rig.publish("O-1", data=b"{not json")
        await rig.until(rig.settled, what="the input to be settled")
    (letter,) = rig.letters()
    assert letter.reason == "undecodable" and rig.payload_of(letter) == b"{not json"
    assert letter.original_stream_seq == seq and rig.acks_of(seq) == 1 and rig.handler.attempts.total() == 0


@virtual
async def test_an_input_whose_msg_id_is_not_its_event_id_is_dead_lettered() -> None:
    async with Rig() as rig:
        seq = rig.publish("O-1", msg_id="something-else")
        await rig.until(rig.settled, what="the input to be settled")
    (letter,) = rig.letters()
    assert letter.reason == "msg_id_mismatch" and letter.order_id == "O-1"
    assert rig.outputs() == [] and rig.acks_of(seq) == 1 and rig.handler.attempts.total() == 0


@virtual
async def test_outputs_are_stored_before_the_input_is_marked_and_marked_before_it_is_acked() -> None:
    async with Rig() as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    ops = rig.broker.ops
    stored = next(i for i, op in enumerate(ops) if op.kind == "stored" and op.stream == "OUT")
    marked = next(i for i, op in enumerate(ops) if op.kind == "stored" and op.stream == "KV_APPLIED")
    acked = next(i for i, op in enumerate(ops) if op.kind == "ack" and op.seq == seq)
    assert stored < marked < acked
    assert await rig.loop._applied.applied([Applied(str(envelope_of("O-1").event_id), seq)]) == {
        str(envelope_of("O-1").event_id)}


@virtual
async def test_an_input_with_no_outputs_is_acked_but_not_marked() -> None:
    async with Rig(Echo({"O-1": [NONE]})) as rig:
        seq = rig.publish("O-1")
        await rig.until(rig.settled, what="the input to be settled")
    assert rig.acks_of(seq) == 1 and rig.outputs() == []
    assert rig.broker.stored("KV_APPLIED") == [], "nothing to mark: handling it again changes nothing"


@virtual
async def test_an_input_whose_output_is_too_large_is_dead_lettered_alone() -> None:
    async with Rig(Echo({"O-big": [BIG]}), batch=8) as rig:
        seqs = [rig.publish(o) for o in ("O-1", "O-big", "O-2")]
        await rig.until(rig.settled, what="every input to be settled")
    (letter,) = rig.letters()
    assert (letter.order_id, letter.reason) == ("O-big", "output_too_large")
    assert rig.outputs() == ["O-1", "O-2"]
    assert [rig.acks_of(s) for s in seqs] == [1, 1, 1]
    assert rig.loop.stats.batches == 1, "the three were one batch: the others went on"


@virtual
async def test_a_replayed_dead_letter_whose_original_was_applied_is_acked_without_being_handled() -> None:
    rig = Rig()
    original = rig.publish("O-1")
    await _mark_applied(rig, Applied(str(envelope_of("O-1").event_id), original))
    (taken,) = rig.consumer.take(1)
    await taken.ack()  # the original was handled (marked) and acked long ago
    event_id = str(envelope_of("O-1").event_id)
    async with rig:
        replay = rig.publish("O-1", msg_id=f"{event_id}:replay:L1",
                             headers={REPLAY_HEADER: "1", REPLAY_OF_HEADER: str(original)})
        await rig.until(rig.settled, what="the replay to be settled")
    assert replay != original
    assert rig.handler.attempts["O-1"] == 0 and rig.loop.stats.duplicates_skipped == 1
    assert rig.acks_of(replay) == 1 and rig.outputs() == []


@virtual
async def test_a_replayed_dead_letter_never_applied_is_handled() -> None:
    async with Rig() as rig:
        event_id = str(envelope_of("O-1").event_id)
        replay = rig.publish("O-1", msg_id=f"{event_id}:replay:L1", headers={REPLAY_HEADER: "1",
                                                                            REPLAY_OF_HEADER: "99"})
        await rig.until(rig.settled, what="the replay to be settled")
    assert rig.handler.attempts["O-1"] == 1 and rig.outputs() == ["O-1"] and rig.acks_of(replay) == 1
