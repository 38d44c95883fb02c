"""Dead letters end to end: operators list them, and replaying one never has a second effect."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid

import pytest
import ray
import yaml

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from cluster.client.trading import TradingClient
from cluster.ops.dlq import list_dead_letters, original, replay
from messages import DeadLettered, OrderApproved, encode, subjects, wrap
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(module_stack):
    """The tests of this module share one deployed system (each uses its own orders and letters)."""
    return module_stack


def _risk_totals(stats: dict) -> dict[str, int]:
    loops = [c for child, per in stats.items() if child.startswith("risk-") for c in per.values()
             if isinstance(c, dict) and "handled" in c]
    return {k: sum(c[k] for c in loops) for k in ("handled", "duplicates_skipped")}


async def test_replaying_a_dead_letter_of_an_order_already_processed_has_no_second_effect(deployed):
    cfg = deployed
    async with TradingClient.from_config(cfg) as client:
        oid = await client.place_order("ACC5", "AAPL", "BUY", 7, "150")
        assert (await client.wait(oid, timeout=30)).status == "filled"
    nc = await connect(cfg.nats.url, name="dlq-test")
    js = nc.jetstream()
    original = next(m for m, _, ev in decoded(await read_stream(js, "ORDERS_RECEIVED")) if ev.order_id == oid)
    # A letter for that message without its Nats-Msg-Id, so the broker's 2-minute duplicate window cannot
    # help: only the stage's durable applied log stands between the replay and a second execution.
    letter = DeadLettered(order_id=oid, stage="risk", reason="max_deliveries", error="planted by the test",
                          original_subject=original.subject, original_stream_seq=original.seq, headers={},
                          payload_b64=base64.b64encode(original.data).decode(), deliveries=5)
    await js.publish(subjects.dlq("risk"), encode(wrap(letter, event_id=uuid.uuid4())))
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    before = _risk_totals(await supervisor.stats.remote())
    records = [r for r in await list_dead_letters(js, "risk") if r.letter.order_id == oid]
    results = await replay(js, records)
    assert [r.outcome for r in results] == ["replayed"]

    async def replay_consumed() -> bool:
        info = await js.consumer_info("ORDERS_RECEIVED", original.subject.replace("orders.received.", "risk-p"))
        return info.num_pending == 0 and info.num_ack_pending == 0

    await async_wait_until(replay_consumed, 15, what="the replayed message to be consumed")
    after = _risk_totals(await supervisor.stats.remote())
    assert after["handled"] == before["handled"], "the risk stage did not handle the order a second time"
    assert after["duplicates_skipped"] == before["duplicates_skipped"] + 1
    approved = [ev for _, _, ev in decoded(await read_stream(js, "ORDERS_APPROVED"))
                if isinstance(ev, OrderApproved) and ev.order_id == oid]
    await nc.close()
    assert len(approved) == 1


async def test_trade_dlq_list_shows_an_undecodable_message_with_its_reason(deployed, tmp_path):
    cfg = deployed
    nc = await connect(cfg.nats.url, name="garbage")
    await nc.jetstream().publish(subjects.orders_received(1), b"{garbage")

    async def lettered() -> bool:
        return any(r.letter.reason == "undecodable" for r in await list_dead_letters(nc.jetstream(), "risk"))

    await async_wait_until(lettered, 15, what="the dead letter")
    await nc.close()
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    result = subprocess.run([sys.executable, "-m", "cluster.ops.cli", "dlq", "list", "--stage", "risk", "--json",
                             "--config", str(cfg_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    letters = [x for x in json.loads(result.stdout) if x["reason"] == "undecodable"]
    assert [(x["stage"], x["reason"], x["original_subject"]) for x in letters] == [
        ("risk", "undecodable", "orders.received.1")]


async def test_one_oversized_message_in_a_batch_is_dead_lettered_by_reference_and_the_orders_beside_it_complete(
        deployed):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    account = "ACC3"
    subject = subjects.orders_received(subjects.partition_of(account, cfg.partitions))
    big = b'{"not": "an envelope", "filler": "' + b"x" * 900_000 + b'"}'  # its copy in a letter would not fit
    nc = await connect(cfg.nats.url, name="oversized")
    js = nc.jetstream()
    assert await supervisor.stop_children.remote("risk-")  # everything below waits, then comes in one batch
    try:
        async with TradingClient.from_config(cfg) as client:
            before = [await client.place_order(account, "AAPL", "BUY", 1 + i, "150") for i in range(5)]
            await js.publish(subject, big)
            after = [await client.place_order(account, "AAPL", "BUY", 10 + i, "150") for i in range(5)]
            await supervisor.start_children.remote("risk-")
            outcomes = [await client.wait(o, timeout=30) for o in before + after]
    finally:
        await supervisor.start_children.remote("risk-")
    assert {str(o.status) for o in outcomes} == {"filled"}
    (letter,) = [r for r in await list_dead_letters(js, "risk") if r.letter.original_subject == subject
                 and r.letter.reason == "bad_envelope"]
    assert letter.letter.payload_omitted and letter.letter.original_stream == "ORDERS_RECEIVED"
    assert (await original(js, letter))[0] == big, "`trade dlq show` reads the original where it is"
    await nc.close()
