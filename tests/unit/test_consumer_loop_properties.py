"""A property of the consumer loop (in-memory broker, virtual time, hypothesis): whatever the handler's
failures and the broker's, interleaved at random, every input ends acked exactly once, with its
output stored once or its dead letter stored once (or neither, when it has no output), it is handled
exactly as often as its own failures call for, and the broker never redelivers it on its own."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.runtime.applied import APPLIED_BUCKET
from tests.unit.test_consumer_loop_rig import ACK_WAIT, NONE, OK, POISON, TRANSIENT, Echo, Rig, run_virtual

#: A broker failure: when (virtual seconds), where, what, and for how many stores or reads.
Fault = tuple[float, str, str, int]

_faults = st.lists(st.tuples(st.floats(0, 15), st.sampled_from(["OUT", "DLQ", "KV_APPLIED"]),
                             st.sampled_from(["refuse", "no_answer", "lost_answer", "kv_down"]), st.integers(1, 4)),
                   max_size=6)
_scripts = st.lists(st.lists(st.sampled_from([OK, NONE, TRANSIENT, POISON]), min_size=1, max_size=4),
                    min_size=1, max_size=6)


def _expected(steps: list[str], max_deliver: int) -> tuple[str, int]:
    """What the loop must make of an input whose handler does `steps`: the outcome and its naks."""
    for attempt in range(1, max_deliver + 1):
        step = steps[min(attempt - 1, len(steps) - 1)]
        if step == OK:
            return "output", attempt - 1
        if step == NONE:
            return "nothing", attempt - 1
        if step == POISON:
            return "handler_error", attempt - 1
    return "max_deliveries", max_deliver - 1


def _inject(rig: Rig, where: str, what: str, times: int) -> None:
    if what == "refuse":
        rig.broker.fail_publishes(where, times)
    elif what == "kv_down":
        rig.broker.kv_unavailable(APPLIED_BUCKET, times)
    else:
        rig.broker.time_out_publishes(where, times, stored=what == "lost_answer")


async def _scenario(scripts: list[list[str]], arrivals: list[float], faults: list[Fault], batch: int,
                    max_deliver: int, prefetch: bool) -> None:
    orders = {f"O-{n}": steps for n, steps in enumerate(scripts)}
    async with Rig(Echo(orders), batch=batch, max_deliver=max_deliver, prefetch=prefetch) as rig:
        events = sorted([(at, "input", order) for at, order in zip(arrivals, orders, strict=False)]
                        + [(at, "fault", fault) for at, *fault in faults], key=lambda e: e[0])
        clock, seqs = asyncio.get_running_loop(), {}
        start = clock.time()
        for at, kind, what in events:
            await asyncio.sleep(max(0.0, start + at - clock.time()))
            if kind == "input":
                seqs[what] = rig.publish(what)
            else:
                _inject(rig, *what)
        await rig.until(lambda: len(seqs) == len(orders) and rig.settled(), within=900, what="every input settled")
        await asyncio.sleep(3 * ACK_WAIT)  # anything the broker would redeliver on its own would come now
        rig.broker.heal()
    letters = Counter((letter.order_id, letter.reason) for letter in rig.letters())
    outputs = Counter(rig.outputs())
    for order, steps in orders.items():
        outcome, naks = _expected(steps, max_deliver)
        seq = seqs[order]
        assert rig.acks_of(seq) == 1, f"{order}: acked {rig.acks_of(seq)} times"
        assert rig.naks_of(seq) == naks and rig.deliveries_of(seq) == naks + 1, f"{order}: redelivered"
        assert rig.handler.attempts[order] == naks + 1, f"{order}: handled {rig.handler.attempts[order]} times"
        assert outputs[order] == (outcome == "output"), f"{order}: {outputs[order]} outputs, expected {outcome}"
        letter = outcome if outcome in ("handler_error", "max_deliveries") else None
        assert letters[(order, letter)] == (letter is not None), f"{order}: letters {letters}"
    assert sum(letters.values()) == rig.loop.stats.dead_lettered
    assert rig.consumer.gave_up == [] and rig.consumer.info().num_ack_pending == 0, "nothing abandoned"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=_scripts, arrivals=st.lists(st.floats(0, 15), min_size=6, max_size=6), faults=_faults,
       batch=st.integers(1, 4), max_deliver=st.integers(1, 4), prefetch=st.booleans())
def test_every_input_is_acked_once_with_its_outputs_stored_once_whatever_fails(
        scripts: list[list[str]], arrivals: list[float], faults: list[Fault], batch: int, max_deliver: int,
        prefetch: bool) -> None:
    run_virtual(_scenario(scripts, arrivals, faults, batch, max_deliver, prefetch))
