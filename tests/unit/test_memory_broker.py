"""The in-memory broker (actors.runtime.memory_broker) behaves as nats-server does where the consumer
loop depends on it, on a manual clock; and the real classes implement the same interfaces."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError, MsgAlreadyAckdError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import BadRequestError, NoStreamResponseError, ServiceUnavailableError

from actors.runtime.advisories import decode_advisory
from actors.runtime.broker import Broker, Delivered, KvBucket, KvWrite, PendingAcks, Publisher, PullSource
from actors.runtime.memory_broker import ManualClock, MemoryBroker, subject_matches
from actors.runtime.nats_broker import NatsBroker, NatsBucket
from actors.runtime.publisher import AckedPublisher, Submitted
from actors.runtime.pull import PullConsumer
from actors.runtime.virtual_time import run_virtual

MSG_ID = "Nats-Msg-Id"


def _broker(**consumer: object) -> MemoryBroker:
    broker = MemoryBroker(clock=ManualClock())
    broker.add_stream("IN", ["in.>"], duplicate_window=60)
    broker.add_bucket("APPLIED")
    broker.add_consumer("IN", "c", ack_wait=5, **consumer)  # type: ignore[arg-type]
    return broker


def _seqs(msgs: list) -> list[tuple[int, int]]:
    return [(m.metadata.sequence.stream, m.metadata.num_delivered) for m in msgs]


def test_subjects_match_with_nats_wildcards() -> None:
    assert subject_matches("in.>", "in.a.b") and subject_matches("in.*", "in.a")
    assert not subject_matches("in.>", "in") and not subject_matches("in.*", "in.a.b")


def test_a_store_gets_the_next_sequence_and_a_subject_no_stream_takes_gets_no_responders() -> None:
    broker = _broker()
    assert [broker.publish("in.0", b"a"), broker.publish("in.1", b"b")] == [1, 2]
    with pytest.raises(NoStreamResponseError):
        broker.publish("nowhere", b"x")


def test_a_copy_within_the_duplicate_window_is_acknowledged_with_the_original_sequence_and_not_stored() -> None:
    broker = _broker()
    assert broker.publish("in.0", b"a", {MSG_ID: "m1"}) == 1
    assert broker.publish("in.0", b"a", {MSG_ID: "m1"}) == 1
    assert len(broker.stored("IN")) == 1
    broker.tick(61)
    assert broker.publish("in.0", b"a", {MSG_ID: "m1"}) == 2, "past the window it is a new message"


def test_a_full_stream_refuses_a_store_as_nats_server_does() -> None:
    broker = _broker()
    broker.streams["IN"].max_msgs = 1
    broker.publish("in.0", b"a")
    with pytest.raises(ServiceUnavailableError) as refused:
        broker.publish("in.0", b"b")
    assert (refused.value.code, refused.value.err_code) == (503, 10077)


def test_messages_are_redelivered_after_the_ack_wait_with_a_growing_delivery_count() -> None:
    broker = _broker()
    broker.publish("in.0", b"a")
    consumer = broker.consumer("IN", "c")
    assert _seqs(consumer.take(10)) == [(1, 1)]
    broker.tick(4.9)
    assert consumer.take(10) == []
    broker.tick(0.2)
    assert _seqs(consumer.take(10)) == [(1, 2)]


def test_in_progress_starts_the_ack_wait_again() -> None:
    broker = _broker()
    broker.publish("in.0", b"a")
    (msg,) = broker.consumer("IN", "c").take(1)
    broker.tick(4)
    run_virtual(msg.in_progress())
    broker.tick(4)
    assert broker.consumer("IN", "c").take(1) == []


def test_a_nak_with_a_delay_redelivers_after_the_delay_and_a_second_ack_is_refused() -> None:
    broker = _broker()
    broker.publish("in.0", b"a")
    consumer = broker.consumer("IN", "c")
    (msg,) = consumer.take(1)
    run_virtual(msg.nak(delay=1.0))
    with pytest.raises(MsgAlreadyAckdError):
        run_virtual(msg.ack())
    assert consumer.take(1) == []
    broker.tick(1.0)
    assert _seqs(consumer.take(1)) == [(1, 2)]


def test_a_message_delivered_max_deliver_times_is_given_up_with_an_advisory() -> None:
    broker = _broker(max_deliver=2)
    broker.add_stream("ADVISORIES", ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"])
    broker.publish("in.0", b"a")
    consumer = broker.consumer("IN", "c")
    for _ in range(3):
        consumer.take(1)
        broker.tick(5)
    assert consumer.gave_up == [1] and consumer.info().num_ack_pending == 0
    (advisory,) = broker.stored("ADVISORIES")
    event = decode_advisory(type("M", (), {"data": advisory.data})())[1]  # type: ignore[arg-type]
    assert (event.stream, event.consumer, event.stream_seq, event.deliveries) == ("IN", "c", 1, 2)
    assert json.loads(advisory.data)["type"] == "io.nats.jetstream.advisory.v1.max_deliver"


def test_with_ack_all_an_ack_covers_every_lower_sequence() -> None:
    broker = _broker(ack_all=True)
    for n in range(3):
        broker.publish("in.0", str(n).encode())
    consumer = broker.consumer("IN", "c")
    msgs = consumer.take(3)
    run_virtual(msgs[1].ack())
    assert sorted(consumer.pending) == [3]


def test_max_ack_pending_stops_new_deliveries() -> None:
    broker = _broker(max_ack_pending=2)
    for n in range(3):
        broker.publish("in.0", str(n).encode())
    assert len(broker.consumer("IN", "c").take(10)) == 2


def test_kv_compare_and_set_and_a_deleted_keys_revision() -> None:
    async def main() -> None:
        broker = _broker()
        publisher = broker.publisher()
        bucket = broker.bucket("APPLIED", publisher)
        assert (await bucket.get("k")).revision == 0
        (rev,) = await bucket.put([KvWrite("k", b"1", 0)], timeout=1)
        with pytest.raises(BadRequestError) as lost:
            await bucket.put([KvWrite("k", b"2", 0)], timeout=1)  # 0: must not exist
        assert lost.value.err_code == 10071
        assert await bucket.put([KvWrite("k", b"2", rev)], timeout=1) == [rev + 1]
        marker = await bucket.delete("k")
        entry = await bucket.get("k")
        assert (entry.value, entry.revision) == (None, marker)

    run_virtual(main())


def test_an_unavailable_kv_fails_reads_and_writes_until_healed() -> None:
    async def main() -> None:
        broker = _broker()
        bucket = broker.bucket("APPLIED", broker.publisher())
        broker.kv_unavailable("APPLIED")
        with pytest.raises(NatsTimeoutError):
            await bucket.get("k")
        with pytest.raises(NoStreamResponseError):
            await bucket.put([KvWrite("k", b"1")], timeout=1)
        broker.heal()
        assert await bucket.put([KvWrite("k", b"1")], timeout=1) == [1]

    run_virtual(main())


def test_injected_publish_faults_refuse_or_leave_unanswered_then_pass() -> None:
    async def main() -> None:
        broker = _broker()
        publisher = broker.publisher()
        broker.fail_publishes("IN", times=1)
        with pytest.raises(ServiceUnavailableError):
            await publisher.store([("in.0", b"a", None)], timeout=1)
        broker.time_out_publishes("IN", times=1, stored=True)
        pending = await publisher.submit([("in.0", b"b", {MSG_ID: "b"})])
        with pytest.raises(TimeoutError):
            await pending.wait(timeout=2)
        assert await publisher.store([("in.0", b"b", {MSG_ID: "b"})], timeout=1) == [1], "it was stored"
        with pytest.raises(MaxPayloadError):
            await publisher.submit([("in.0", b"x" * (broker.max_payload + 1), None)])

    run_virtual(main())


def test_a_pull_waits_for_a_message_and_stop_returns_what_it_buffered() -> None:
    async def main() -> None:
        broker = MemoryBroker(prefetch=True)  # on the event loop's (virtual) clock
        broker.add_stream("IN", ["in.>"])
        broker.add_consumer("IN", "c", ack_wait=5)
        pull = broker.pull("IN", "c", batch=1)
        await pull.start()
        clock = asyncio.get_running_loop()
        assert await pull.next_batch(1, timeout=30) == []
        start = clock.time()
        clock.call_later(10, broker.publish, "in.0", b"a")
        (first,) = await pull.next_batch(1, timeout=30)
        assert first.metadata.sequence.stream == 1 and clock.time() - start == pytest.approx(10)
        broker.publish("in.0", b"b")
        broker.publish("in.0", b"c")
        (second,) = await pull.next_batch(1, timeout=30)
        assert second.metadata.sequence.stream == 2 and pull.buffered() == 1, "the next one delivered ahead"
        assert [m.metadata.sequence.stream for m in await pull.stop()] == [3]

    run_virtual(main())


def test_virtual_time_lets_an_hour_of_sleeps_pass_at_once() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(asyncio.sleep(3600) for _ in range(10)))
        return loop.time() - start

    t0 = time.perf_counter()
    assert run_virtual(main()) == pytest.approx(3600)
    assert time.perf_counter() - t0 < 1


def test_the_real_and_the_in_memory_classes_implement_the_broker_interfaces() -> None:
    msg = Msg(_client=None, subject="in.0", reply="$JS.ACK.IN.c.1.7.7.1700000000000000000.0")  # type: ignore[arg-type]
    assert isinstance(msg, Delivered) and msg.metadata.sequence.stream == 7
    broker = _broker()
    broker.publish("in.0", b"a")
    assert isinstance(broker.consumer("IN", "c").take(1)[0], Delivered)
    implementations: list[tuple[object, type]] = [
        (PullConsumer, PullSource), (AckedPublisher, Publisher), (Submitted, PendingAcks), (NatsBucket, KvBucket),
        (NatsBroker, Broker), (broker, Broker), (broker.pull("IN", "c", 1), PullSource),
        (broker.publisher(), Publisher), (run_virtual(broker.publisher().submit([])), PendingAcks),
        (broker.bucket("APPLIED", broker.publisher()), KvBucket)]
    for implementation, interface in implementations:
        missing = [name for name in _members(interface) if not hasattr(implementation, name)]
        assert not missing, f"{implementation!r} lacks {missing} of {interface.__name__}"


def _members(interface: type) -> set[str]:
    return {n for n in vars(interface) if not n.startswith("_") or n == "__len__"}
