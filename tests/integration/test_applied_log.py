"""The applied log on a real nats-server: ranges by stream sequence, replays, racing writers, old marks."""

from __future__ import annotations

import pytest

from actors.runtime.applied import APPLIED_BUCKET, RANGE_SPAN, Applied, AppliedLog, applied_key, range_key
from actors.runtime.nats_conn import connect
from actors.runtime.publisher import AckedPublisher

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(nats_server):
    nc = await connect(nats_server.url, name="test-applied")
    js = nc.jetstream()
    await js.create_key_value(bucket=APPLIED_BUCKET, history=1)
    publishers: list[AckedPublisher] = []

    async def log(durable: str = "risk-p0") -> AppliedLog:
        publisher = AckedPublisher(nc)
        await publisher.start()
        publishers.append(publisher)
        return AppliedLog(js, durable, publisher)

    yield js, log
    for publisher in publishers:
        await publisher.stop()
    await nc.close()


async def test_a_marked_input_is_known_to_the_next_owner_by_its_sequence(conn) -> None:
    _, log = conn
    await (await log()).mark([Applied("e1", 10), Applied("e2", 11)], timeout=5)
    fresh = await log()  # another process: nothing in memory
    assert await fresh.applied([Applied("e1", 10), Applied("e2", 11), Applied("e3", 12)]) == {"e1", "e2"}


async def test_a_batch_writes_one_key_per_range_it_touches(conn) -> None:
    js, log = conn
    await (await log()).mark([Applied(f"e{n}", n) for n in range(1, 200)], timeout=5)
    keys = await (await js.key_value(APPLIED_BUCKET)).keys()
    assert keys == [range_key("risk-p0", 0)]


async def test_marks_of_one_consumer_do_not_count_for_another(conn) -> None:
    _, log = conn
    await (await log("risk-p0")).mark([Applied("e1", 10)], timeout=5)
    assert await (await log("risk-p1")).applied([Applied("e1", 10)]) == set()


async def test_a_replayed_letter_is_known_by_its_original_sequence(conn) -> None:
    _, log = conn
    await (await log()).mark([Applied("e1", 10)], timeout=5)
    replay = Applied("e1", 900, replayed=True, replay_of=10)
    assert await (await log()).applied([replay]) == {"e1"}


async def test_a_second_replay_of_the_same_letter_is_known_by_its_event_id(conn) -> None:
    _, log = conn
    await (await log()).mark([Applied("e1", 900, replayed=True, replay_of=None)], timeout=5)
    assert await (await log()).applied([Applied("e1", 950, replayed=True, replay_of=None)]) == {"e1"}


async def test_two_writers_of_one_range_lose_nothing_of_each_other(conn) -> None:
    _, log = conn
    first, second = await log(), await log()
    await first.applied([Applied("x", 1)])  # both have read the range before either writes
    await second.applied([Applied("x", 1)])
    await first.mark([Applied("a", 5)], timeout=5)
    await second.mark([Applied("b", 6)], timeout=5)  # its revision is stale: merged and written again
    assert await (await log()).applied([Applied("a", 5), Applied("b", 6)]) == {"a", "b"}


async def test_ranges_far_apart_are_separate_keys(conn) -> None:
    _, log = conn
    await (await log()).mark([Applied("a", 3), Applied("b", 3 * RANGE_SPAN + 3)], timeout=5)
    assert await (await log()).applied([Applied("a", 3), Applied("b", 3 * RANGE_SPAN + 3),
                                        Applied("c", RANGE_SPAN + 3)]) == {"a", "b"}


async def test_a_mark_by_event_id_from_an_earlier_version_is_still_honoured(conn) -> None:
    js, log = conn
    await (await js.key_value(APPLIED_BUCKET)).put(applied_key("risk-p0", "old"), b"1")
    assert await (await log()).applied([Applied("old", 77)]) == {"old"}


async def test_a_redelivered_replay_known_by_its_sequence_gets_its_event_id_mark_again(conn) -> None:
    js, log = conn
    first_replay = Applied("e1", 900, replayed=True, replay_of=None)
    marker = await log()
    await marker._write({0: [900]}, [], timeout=5)  # its range written, its event-id mark lost
    assert await (await log()).applied([first_replay]) == {"e1"}
    assert await (await js.key_value(APPLIED_BUCKET)).get(applied_key("risk-p0", "e1"))
