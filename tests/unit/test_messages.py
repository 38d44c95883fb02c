"""The wire contract: order validation, the envelope, deterministic ids and partitions."""

from __future__ import annotations

import uuid
import zlib
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from messages.base import OrderType, Side
from messages.commands import NewOrder
from messages.envelope import DecodeError, Envelope, decode, encode, wrap
from messages.events import AllocationCompleted, AllocationLine, OrderApproved, OrderReceived
from messages.ids import derive_event_id, order_received_id
from messages.subjects import partition_of


def order_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "order_id": "O-1",
        "account": "ACC1",
        "symbol": "AAPL",
        "side": "BUY",
        "qty": 100,
        "price": Decimal("150.25"),
    }
    fields.update(overrides)
    return fields


def received(**overrides: Any) -> OrderReceived:
    return OrderReceived(**order_fields(**overrides))


# --- NewOrder validation ---------------------------------------------------------------------------


def test_a_valid_limit_order_is_accepted() -> None:
    order = NewOrder(**order_fields())
    assert order.qty == 100
    assert order.side is Side.BUY
    assert order.order_type is OrderType.LIMIT


@pytest.mark.parametrize("qty", [0, -1, -100])
def test_a_zero_or_negative_quantity_is_rejected(qty: int) -> None:
    with pytest.raises(ValidationError, match="qty"):
        NewOrder(**order_fields(qty=qty))


@pytest.mark.parametrize("qty", [5.5, 5.0, "5"])
def test_a_quantity_that_is_not_a_whole_int_is_rejected(qty: Any) -> None:
    with pytest.raises(ValidationError, match="qty"):
        NewOrder(**order_fields(qty=qty))


def test_a_float_price_becomes_a_decimal_not_a_float() -> None:
    order = NewOrder(**order_fields(price=100.25))
    assert isinstance(order.price, Decimal)
    assert order.price == Decimal("100.25")


@pytest.mark.parametrize("price", [0, -1, "nan", "inf"])
def test_a_price_that_is_not_positive_and_finite_is_rejected(price: Any) -> None:
    with pytest.raises(ValidationError, match="price"):
        NewOrder(**order_fields(price=price))


@pytest.mark.parametrize("side", ["HOLD", "buy", ""])
def test_an_unknown_side_is_rejected(side: str) -> None:
    with pytest.raises(ValidationError, match="side"):
        NewOrder(**order_fields(side=side))


def test_a_limit_order_without_a_price_is_rejected() -> None:
    with pytest.raises(ValidationError, match="price is required for a LIMIT order"):
        NewOrder(**order_fields(price=None, order_type="LIMIT"))


def test_a_market_order_with_a_price_is_rejected() -> None:
    with pytest.raises(ValidationError, match="price must be empty for a MARKET order"):
        NewOrder(**order_fields(price=Decimal("1"), order_type="MARKET"))


def test_a_market_order_without_a_price_is_accepted() -> None:
    order = NewOrder(**order_fields(price=None, order_type="MARKET"))
    assert order.price is None


@pytest.mark.parametrize("order_id", ["", "has space", "-leading-dash", "x" * 65, "é"])
def test_a_bad_order_id_is_rejected(order_id: str) -> None:
    with pytest.raises(ValidationError, match="order_id"):
        NewOrder(**order_fields(order_id=order_id))


def test_an_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="colour"):
        NewOrder(**order_fields(colour="red"))


def test_an_order_cannot_be_changed_after_it_is_made() -> None:
    order = NewOrder(**order_fields())
    with pytest.raises(ValidationError, match="frozen"):
        order.qty = 5  # type: ignore[misc]


# --- envelope ----------------------------------------------------------------------------------------


def test_an_envelope_survives_wrap_encode_decode_unchanged() -> None:
    event = received()
    env = wrap(event, event_id=order_received_id(event.order_id), ts=1_700_000_000_000_000_000)
    decoded_env, decoded_event = decode(encode(env))
    assert decoded_env == env
    assert decoded_event == event
    assert isinstance(decoded_event, OrderReceived)


def test_a_wrapped_event_names_its_type_version_and_order() -> None:
    event = received()
    env = wrap(event, event_id=uuid.uuid4())
    assert (env.type, env.version, env.correlation_id) == ("OrderReceived", 1, "O-1")


def test_a_caused_event_derives_its_id_from_its_cause() -> None:
    cause = wrap(received(), event_id=order_received_id("O-1"))
    approved = OrderApproved(**order_fields())
    first = wrap(approved, cause=cause)
    again = wrap(approved, cause=cause)
    assert first.event_id == again.event_id == derive_event_id(cause.event_id, "OrderApproved")
    assert first.causation_id == str(cause.event_id)


def test_wrapping_an_event_with_no_cause_and_no_id_is_refused() -> None:
    with pytest.raises(ValueError, match="explicit event_id"):
        wrap(received())


@pytest.mark.parametrize("data", [b"", b"not json", b"\xff\xfe\x00", b"{", b"[1, 2"])
def test_decoding_garbage_bytes_raises_undecodable(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.reason == "undecodable"


def test_decoding_an_unknown_event_type_raises_unknown_type() -> None:
    env = Envelope(
        event_id=uuid.uuid4(), type="OrderTeleported", version=1, correlation_id="O-1", ts=1, payload={}
    )
    with pytest.raises(DecodeError) as info:
        decode(encode(env))
    assert info.value.reason == "unknown_type"


def test_a_decode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode(b"garbage")


# --- deterministic ids -------------------------------------------------------------------------------


def test_the_same_cause_type_and_discriminator_derive_the_same_event_id() -> None:
    cause = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert derive_event_id(cause, "OrderFilled", "E-1") == derive_event_id(cause, "OrderFilled", "E-1")


def test_a_cause_as_text_or_as_uuid_derives_the_same_event_id() -> None:
    cause = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert derive_event_id(cause, "OrderFilled") == derive_event_id(str(cause), "OrderFilled")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("c", "OrderFilled", "E-1"), ("c", "OrderFilled", "E-2")),
        (("c", "OrderFilled", ""), ("c", "OrderCanceled", "")),
        (("c1", "OrderFilled", ""), ("c2", "OrderFilled", "")),
    ],
)
def test_a_different_cause_type_or_discriminator_derives_a_different_event_id(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    assert derive_event_id(*a) != derive_event_id(*b)


def test_the_order_received_id_of_an_order_id_is_stable() -> None:
    # Pinned: a change would break de-duplication of orders across releases.
    assert order_received_id("O-1") == uuid.UUID("6baaa76f-b728-5829-9733-e09c3300670a")


def test_different_order_ids_have_different_order_received_ids() -> None:
    assert order_received_id("O-1") != order_received_id("O-2")


# --- events ------------------------------------------------------------------------------------------


def allocation(lines: list[tuple[str, int]], delta: list[tuple[str, int]], cum: int, last: int) -> Any:
    return AllocationCompleted(
        order_id="O-1",
        block_account="FUND3",
        symbol="AAPL",
        side="BUY",
        profile="FUND3",
        exec_id="E-1",
        cum_qty=cum,
        last_qty=last,
        avg_px=Decimal("10"),
        lines=tuple(AllocationLine(account=a, qty=q) for a, q in lines),
        delta=tuple(AllocationLine(account=a, qty=q) for a, q in delta),
    )


def test_an_allocation_whose_lines_sum_to_cum_qty_is_accepted() -> None:
    event = allocation([("A", 6), ("B", 4)], [("A", 7), ("B", -3)], cum=10, last=4)
    assert sum(line.qty for line in event.lines) == 10


def test_an_allocation_whose_lines_do_not_sum_to_cum_qty_is_rejected() -> None:
    with pytest.raises(ValidationError, match="lines must sum to cum_qty"):
        allocation([("A", 6), ("B", 3)], [("A", 6), ("B", 3)], cum=10, last=9)


def test_an_allocation_whose_delta_does_not_sum_to_last_qty_is_rejected() -> None:
    with pytest.raises(ValidationError, match="delta must sum to last_qty"):
        allocation([("A", 6), ("B", 4)], [("A", 6), ("B", 4)], cum=10, last=4)


# --- partitions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("account", ["ACC1", "ACC2", "FUND3", "A", "zz-top_9"])
@pytest.mark.parametrize("partitions", [1, 2, 8, 16, 1024])
def test_the_partition_of_an_account_is_crc32_modulo_the_partition_count(
    account: str, partitions: int
) -> None:
    assert partition_of(account, partitions) == zlib.crc32(account.encode()) % partitions


@pytest.mark.parametrize("partitions", [1, 3, 16])
def test_the_partition_of_an_account_is_stable_and_in_range(partitions: int) -> None:
    for n in range(200):
        account = f"ACC{n}"
        p = partition_of(account, partitions)
        assert 0 <= p < partitions
        assert partition_of(account, partitions) == p


@pytest.mark.parametrize("partitions", [0, -1])
def test_a_partition_count_below_one_is_refused(partitions: int) -> None:
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        partition_of("ACC1", partitions)
