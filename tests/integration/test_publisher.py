"""Storing messages in JetStream with their acknowledgements awaited together, on a real nats-server."""

from __future__ import annotations

import pytest
from nats.js.errors import BadRequestError, NoStreamResponseError

from actors.runtime.nats_conn import connect
from actors.runtime.publisher import AckedPublisher

pytestmark = pytest.mark.integration


@pytest.fixture
async def stored(nats_server):
    nc = await connect(nats_server.url, name="test-publisher")
    js = nc.jetstream()
    await js.add_stream(name="LOG", subjects=["log.>"], duplicate_window=60.0)
    publisher = AckedPublisher(nc)
    await publisher.start()
    yield publisher, js
    await publisher.stop()
    await nc.close()


async def test_every_message_is_stored_in_order_and_its_sequence_returned(stored) -> None:
    publisher, js = stored
    seqs = await publisher.store([(f"log.{n}", str(n).encode(), None) for n in range(50)], timeout=5)
    assert seqs == list(range(1, 51))
    assert (await js.get_msg("LOG", 50)).data == b"49"
    assert publisher.waiting() == 0


async def test_a_message_id_seen_before_is_not_stored_twice(stored) -> None:
    publisher, js = stored
    first = await publisher.store([("log.a", b"x", {"Nats-Msg-Id": "m1"})], timeout=5)
    again = await publisher.store([("log.a", b"x", {"Nats-Msg-Id": "m1"})], timeout=5)
    assert first == again
    assert (await js.stream_info("LOG")).state.messages == 1


async def test_a_subject_no_stream_takes_raises_no_stream_response(stored) -> None:
    publisher, _ = stored
    with pytest.raises(NoStreamResponseError):
        await publisher.store([("nowhere.x", b"x", None)], timeout=5)
    assert publisher.waiting() == 0


async def test_the_brokers_refusal_is_raised_with_its_own_type(stored) -> None:
    publisher, _ = stored
    with pytest.raises(BadRequestError):  # wrong expected stream: refused, not stored
        await publisher.store([("log.a", b"x", {"Nats-Expected-Stream": "OTHER"})], timeout=5)


async def test_nothing_to_store_returns_at_once(stored) -> None:
    publisher, _ = stored
    assert await publisher.store([], timeout=5) == []


async def test_an_unanswered_store_times_out_and_forgets_its_messages(stored, nats_server) -> None:
    publisher, _ = stored
    nats_server.kill()
    with pytest.raises(TimeoutError):
        await publisher.store([("log.a", b"x", None)], timeout=0.3)
    assert publisher.waiting() == 0


async def test_a_single_send_settles_its_future_with_the_stream_sequence(stored) -> None:
    publisher, _ = stored
    first = await publisher.send("log.a", b"1")
    second = await publisher.send("log.b", b"2", {"Nats-Msg-Id": "s2"})
    assert [await first, await second] == [1, 2]
    assert publisher.waiting() == 0
