"""Reading a stream's history: several server-side filters, a start sequence, and no match at all."""

from __future__ import annotations

import pytest

from actors.runtime.nats_conn import connect
from actors.runtime.streams import read_stream

pytestmark = pytest.mark.integration


@pytest.fixture
async def js(nats_server):
    nc = await connect(nats_server.url, name="test-read-stream")
    js = nc.jetstream()
    await js.add_stream(name="LOG", subjects=["log.>"])
    for n in range(6):
        await js.publish(f"log.p{n % 3}", str(n).encode())
    yield js
    await nc.close()


async def test_several_filters_read_only_their_subjects_in_stream_order(js) -> None:
    read = await read_stream(js, "LOG", ["log.p0", "log.p2"])
    assert [(m.subject, m.data) for m in read] == [("log.p0", b"0"), ("log.p2", b"2"), ("log.p0", b"3"),
                                                   ("log.p2", b"5")]


async def test_a_start_sequence_skips_what_came_before(js) -> None:
    read = await read_stream(js, "LOG", "log.p1", start_seq=3)
    assert [m.seq for m in read] == [5]


async def test_filters_that_match_nothing_read_nothing(js) -> None:
    assert await read_stream(js, "LOG", ["log.p7", "log.p8"]) == []
    assert await read_stream(js, "LOG", "log.p0", start_seq=5) == []
