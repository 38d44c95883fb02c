"""Faults from outside, on the order-book venue, the ones users meet first. The venue answers late
(latency above `call_timeout` for longer than `max_hold`), stalls (takes requests and does nothing),
drops the session; the gateway dies between the venue taking an order and a halt; the executions
stream is full; a kill-switch value is malformed; a host's clock is off; an order id is placed again
after the stages' own memories forgot it. After each, every order has exactly one outcome that agrees
with the venue's own record, and nothing was given up (the audit is clean).

One book-mode stack for the module (each test uses its own orders or accounts and undoes its fault);
the timeouts are scaled down from the defaults so that a fault longer than `max_hold` lasts seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import ray

from actors.domain.risk_state import TradingState
from actors.runtime.control import CONTROL_BUCKET, set_trading_state
from actors.runtime.nats_conn import connect
from actors.runtime.refprices import wait_reference_prices
from actors.runtime.streams import decoded, read_stream
from cluster.client.load import LoadReport, order_mix, run_load
from cluster.client.trading import TradingClient
from cluster.config import SystemConfig
from cluster.ops.audit import audit
from cluster.ops.venue_admin import set_venue_faults
from messages import (
    MSG_ID_HEADER,
    AlarmRaised,
    OrderApproved,
    OrderCanceled,
    OrderReceived,
    OrderVenueRejected,
    encode,
    order_received_id,
    subjects,
    wrap,
)
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until, module_nats, running_system, small_config

pytestmark = pytest.mark.e2e

CALL_TIMEOUT = 0.5
MAX_HOLD = 3.0
RATE_WINDOW = 30
#: Risk remembers only this many decided order ids per partition here, so a test can go past it.
REMEMBERED = 5


def book_fault_config(url: str, name: str) -> SystemConfig:
    return small_config(
        url, name=name,
        venues={"SIM": {"mode": "book", "symbols": ["AAPL", "MSFT"], "tick": "1s"}},
        stages={
            "risk": {"replicas": 2, "num_cpus": 0.05, "delivery": {"ack_wait": "1s"},
                     "remember_order_ids": REMEMBERED},
            "gateway": {"num_cpus": 0.05, "call_timeout": CALL_TIMEOUT, "max_hold": MAX_HOLD, "retry_max": 0.5,
                        "delivery": {"ack_wait": "1s"},
                        "breaker": {"open_timeout": 0.5, "max_open_timeout": 2.0}},
            "allocator": {"replicas": 1, "num_cpus": 0.05, "delivery": {"ack_wait": "1s"}},
        },
        risk={"default": {"max_order_qty": 10000, "max_notional": 1000000, "collar_pct": 5},
              "accounts": {"ACC1": {"max_order_qty": 500},
                           "RATE1": {"max_orders_per_window": 3, "rate_window": f"{RATE_WINDOW}s"}}},
    ).model_copy(deep=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, ray_head: Any) -> Iterator[SystemConfig]:
    with module_nats(tmp_path_factory, "venue-faults") as server, \
            running_system(book_fault_config(server.url, "vfaults"), ray_head) as cfg:
        yield cfg


async def _trade_through(cfg: SystemConfig, fault: dict[str, Any], seed: int, orders: int = 240,
                         rate: float = 40.0, fault_after: float = 1.0, fault_for: float = 2 * MAX_HOLD) -> LoadReport:
    """Orders at `rate`/s; after `fault_after` s the venue takes `fault` for `fault_for` s (longer than
    max_hold), then recovers. Returns the load's report once every order settled (or timed out)."""
    nc = await connect(cfg.nats.url, name="faults")
    try:
        reference = await wait_reference_prices(nc.jetstream(), "SIM")
        async with TradingClient.from_config(cfg) as client:
            load = asyncio.create_task(run_load(client, order_mix(orders, seed=seed, reference=reference),
                                                rate=rate, timeout=90))
            try:
                await asyncio.sleep(fault_after)  # the fault's schedule is the scenario, not a wait on a condition
                await set_venue_faults(nc, "SIM", **fault)
                await asyncio.sleep(fault_for)
            finally:
                await set_venue_faults(nc, "SIM", clear=True)
            return await load
    finally:
        await nc.close()


async def _audit_clean(cfg: SystemConfig) -> None:
    nc = await connect(cfg.nats.url, name="audit")
    try:
        report = await audit(nc.jetstream(), grace_s=0, nc=nc)
    finally:
        await nc.close()
    assert report.ok, (report.counts(), report.violations[:10])


async def _alarms(cfg: SystemConfig, kind: str) -> list[AlarmRaised]:
    nc = await connect(cfg.nats.url, name="alarms")
    try:
        stored = await read_stream(nc.jetstream(), "SUPERVISION", f"supervision.alarm.{kind}")
    finally:
        await nc.close()
    return [ev for _, _, ev in decoded(stored) if isinstance(ev, AlarmRaised)]


async def _venue_closed(cfg: SystemConfig) -> list[OrderVenueRejected]:
    """Orders closed as VENUE_UNAVAILABLE by the venue's own record (a report with an exec id)."""
    nc = await connect(cfg.nats.url, name="closed")
    try:
        stored = await read_stream(nc.jetstream(), "EXECUTIONS")
    finally:
        await nc.close()
    return [ev for _, _, ev in decoded(stored)
            if isinstance(ev, OrderVenueRejected) and ev.exec_id is not None and "VENUE_UNAVAILABLE" in ev.reason]


async def test_a_venue_answering_later_than_call_timeout_for_longer_than_max_hold_ends_with_every_order_agreeing(
        stack: SystemConfig) -> None:
    report = await _trade_through(stack, {"latency": 2 * CALL_TIMEOUT}, seed=11)
    assert report.lost == 0 and report.duplicated == 0, report.lost_order_ids[:5]
    await _audit_clean(stack)


async def test_a_stalled_venue_leaves_orders_pending_in_doubt_until_it_answers_then_each_agrees_with_it(
        stack: SystemConfig) -> None:
    report = await _trade_through(stack, {"stall": True}, seed=12)
    assert report.lost == 0 and report.duplicated == 0, report.lost_order_ids[:5]
    await _audit_clean(stack)
    assert await _alarms(stack, "order_in_doubt"), "orders sent into the stall were in doubt, with an alarm"
    assert await _venue_closed(stack), "orders given up were closed by the venue's record, not by ours alone"


async def test_a_venue_that_drops_the_session_ends_with_every_order_agreeing_with_it(stack: SystemConfig) -> None:
    report = await _trade_through(stack, {"disconnect": True}, seed=13)
    assert report.lost == 0 and report.duplicated == 0, report.lost_order_ids[:5]
    assert report.venue_rejected > 0, "orders held past max_hold while no venue was connected are rejected"
    await _audit_clean(stack)


@pytest.fixture(autouse=True)
async def _no_fault_left(stack: SystemConfig) -> Any:
    yield
    nc = await connect(stack.nats.url, name="cleanup")
    with contextlib.suppress(Exception):
        await set_venue_faults(nc, "SIM", clear=True)
    await nc.close()


# --- the gateway dies between the venue taking an order and a halt --------------------------------


async def test_a_halt_after_the_gateway_died_with_an_order_at_the_venue_cancels_it_there_not_as_unsent(
        stack: SystemConfig) -> None:
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=stack.name)
    nc = await connect(stack.nats.url, name="halt-kill")
    js = nc.jetstream()
    reference = (await wait_reference_prices(js, "SIM"))["AAPL"]
    await supervisor.call_child.remote("gateway-SIM", "arm_fault", "after_venue_answer")
    try:
        async with TradingClient.from_config(stack) as client:
            # A DAY order below the market: it rests at the venue.
            order_id = await client.place_order("HALT1", "AAPL", "BUY", 10, str(reference * Decimal("0.98")))
            await async_wait_until(lambda: _reached(supervisor), 20, what="the venue's answer to the order")
            os.kill(await _pid(supervisor, "gateway-SIM"), signal.SIGKILL)  # the approval is not acked
            await set_trading_state(js, TradingState.HALTED, account="HALT1", reason="fault test")
            outcome = await client.wait(order_id, timeout=30)
        assert outcome.status == "canceled"
        cancel = next(ev for env in outcome.events if isinstance(ev := env.event(), OrderCanceled))
        assert cancel.exec_id is not None, "canceled by the venue (its report), not closed here as never sent"
    finally:
        await set_trading_state(js, TradingState.ACTIVE, account="HALT1")
        await nc.close()
    await _audit_clean(stack)


async def _reached(supervisor: Any) -> bool:
    reached = await supervisor.call_child.remote("gateway-SIM", "faults_reached")
    return reached.get("after_venue_answer", 0) > 0


async def _pid(supervisor: Any, child: str) -> int:
    status = await supervisor.status.remote()
    return next(c["pid"] for c in status["children"] if c["id"] == child)


# --- a full stream --------------------------------------------------------------------------------


async def test_an_executions_stream_full_for_over_five_seconds_gives_no_order_up_and_raises_an_alarm(
        stack: SystemConfig) -> None:
    nc = await connect(stack.nats.url, name="full")
    js = nc.jetstream()
    info = await js.stream_info("EXECUTIONS")
    dead_before = len(await read_stream(js, "DLQ"))
    await js.update_stream(dataclasses.replace(info.config, max_msgs=info.state.messages))  # full: writes refused
    try:
        reference = await wait_reference_prices(js, "SIM")
        async with TradingClient.from_config(stack) as client:
            load = asyncio.create_task(run_load(client, order_mix(40, seed=21, reference=reference), timeout=60))
            await asyncio.sleep(6.0)  # the stream stays full this long (the alarm comes after 5 s of refusals)
            assert not load.done(), "no order can finish while its executions cannot be stored"
            await js.update_stream(info.config)
            report = await load
    finally:
        await js.update_stream(info.config)
    assert report.lost == 0 and report.duplicated == 0, report.lost_order_ids[:5]
    assert len(await read_stream(js, "DLQ")) == dead_before, "a broker that refuses writes gives no input up"
    await nc.close()
    assert await _alarms(stack, "broker_refuses"), "an operator hears of a stream that refuses writes"
    await _audit_clean(stack)


# --- a malformed kill-switch value ------------------------------------------------------------------


async def test_a_malformed_control_value_is_refused_with_an_alarm_and_a_later_halt_still_applies(
        stack: SystemConfig) -> None:
    nc = await connect(stack.nats.url, name="control")
    js = nc.jetstream()
    kv = await js.key_value(CONTROL_BUCKET)
    try:
        await kv.put("trading.account.CTL1", b'{"state": "PAUSED-ISH"')
        await async_wait_until(lambda: _alarms(stack, "control_value_refused"), 20, what="the refusal's alarm")
        await set_trading_state(js, TradingState.HALTED, account="CTL1", reason="after the bad value")
        async with TradingClient.from_config(stack) as client:
            outcome = await client.wait(await client.place_order("CTL1", "AAPL", "BUY", 1, "1"), timeout=30)
        assert outcome.status == "rejected" and "halted" in (outcome.reason or "")
    finally:
        await set_trading_state(js, TradingState.ACTIVE, account="CTL1")
        await nc.close()


# --- a host's clock is off ---------------------------------------------------------------------------


async def test_a_gateway_whose_clock_is_an_hour_ahead_still_waits_out_a_slow_venue_on_its_own_clock(
        stack: SystemConfig) -> None:
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=stack.name)
    await supervisor.call_child.remote("gateway-SIM", "skew_clock", 3600.0)
    try:
        report = await _trade_through(stack, {"latency": 2 * CALL_TIMEOUT}, seed=31, orders=80, fault_after=0.5,
                                      fault_for=1.0)  # slower than call_timeout, shorter than max_hold
    finally:
        await supervisor.call_child.remote("gateway-SIM", "skew_clock", 0.0)
    assert report.lost == 0 and report.venue_rejected == 0, "an hour of skew is no reason to give an order up"
    await _audit_clean(stack)


async def test_a_rate_window_holds_across_a_takeover_when_the_first_owners_clock_was_an_hour_behind(
        stack: SystemConfig) -> None:
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=stack.name)
    owner = f"risk-{subjects.partition_of('RATE1', stack.partitions) % stack.stages.risk.replicas}"
    await supervisor.call_child.remote(owner, "skew_clock", -3600.0)
    nc = await connect(stack.nats.url, name="rate")
    behind = str((await wait_reference_prices(nc.jetstream(), "SIM"))["AAPL"] * Decimal("0.98"))  # nothing trades
    await nc.close()
    async with TradingClient.from_config(stack) as client:
        first = [await client.place_order("RATE1", "AAPL", "BUY", 1, behind, tif="IOC") for _ in range(3)]
        assert {str((await client.wait(o, timeout=30)).status) for o in first} == {"canceled"}, "approved, unfilled"
        os.kill(await _pid(supervisor, owner), signal.SIGKILL)  # its replacement runs on a true clock
        after = await client.wait(await client.place_order("RATE1", "AAPL", "BUY", 1, behind, tif="IOC"), timeout=60)
    assert after.status == "rejected" and (after.reason or "").startswith("max_orders_per_window"), after.reason


# --- an order id placed again after every memory of it in the stages is gone --------------------------


async def test_a_filled_order_placed_again_past_the_stages_memories_changes_neither_risk_nor_positions(
        stack: SystemConfig) -> None:
    nc = await connect(stack.nats.url, name="replace")
    js = nc.jetstream()
    reference = (await wait_reference_prices(js, "SIM"))["MSFT"]
    async with TradingClient.from_config(stack) as client:
        first = await client.place_order("DUP1", "MSFT", "BUY", 7, str(reference * Decimal("1.01")), tif="IOC")
        assert (await client.wait(first, timeout=30)).status == "filled"
        for _ in range(3 * REMEMBERED):  # the risk partition's memory of decided ids moves past it
            await client.wait(await client.place_order("DUP1", "MSFT", "SELL", 1, "1", tif="IOC"), timeout=30)
        positions = await async_wait_until(lambda: _held(client, "DUP1", 7), 20, what="the fill in the positions")
        await client.place_order("DUP1", "MSFT", "BUY", 7, str(reference * Decimal("1.01")), order_id=first)
        # Also a copy published around the contract (a new Nats-Msg-Id): refused, not decided again.
        received = OrderReceived(order_id=first, account="DUP1", symbol="MSFT", side="BUY", qty=7,
                                 price=reference * Decimal("1.01"), tif="IOC")
        envelope = wrap(received, event_id=order_received_id(first))
        await js.publish(subjects.orders_received(subjects.partition_of("DUP1", stack.partitions)), encode(envelope),
                         headers={MSG_ID_HEADER: f"{envelope.event_id}-copy"})
        await async_wait_until(lambda: _dead_lettered(js, first), 20, what="the copy to be dead-lettered")
        assert await _held(client, "DUP1", 7) == positions
    approvals = [ev for _, _, ev in decoded(await read_stream(js, "ORDERS_APPROVED")) if ev.order_id == first]
    received_msgs = [m for m, _, ev in decoded(await read_stream(js, "ORDERS_RECEIVED")) if ev.order_id == first]
    await nc.close()
    assert len(approvals) == 1 and isinstance(approvals[0], OrderApproved)
    assert len(received_msgs) == 2, "the placement again was dropped by the stream; only the forged copy got in"
    await _audit_clean(stack)


async def _held(client: TradingClient, account: str, quantity: int) -> list[tuple[str, int, str, str]] | None:
    """The account's positions (without the P&L marked to the moving reference price) once it holds
    `quantity` in all; None before."""
    rows = await client.positions(account)
    if sum(r["quantity"] for r in rows) != quantity:
        return None
    return sorted((r["symbol"], r["quantity"], r["avg_cost"], r["realised"]) for r in rows)


async def _dead_lettered(js: Any, order_id: str) -> bool:
    return any(ev.order_id == order_id and ev.reason == "msg_id_mismatch"
               for _, _, ev in decoded(await read_stream(js, "DLQ")))
