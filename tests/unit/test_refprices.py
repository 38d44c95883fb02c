"""Reference prices folded from the REFPRICES bucket: a value that is not a positive price is refused."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from actors.runtime.refprices import InvalidPrice, ReferencePrices


def _value(price: object) -> bytes:
    return json.dumps({"price": price, "ts": 1}).encode()


def test_a_price_is_folded_by_venue_and_symbol() -> None:
    prices = ReferencePrices()
    prices.apply("SIM.AAPL", _value("187.25"))
    assert prices.get("SIM", "AAPL") == Decimal("187.25")


@pytest.mark.parametrize("value", [_value("-1"), _value("0"), _value("NaN"), _value("abc"), b"{", b'{"px": 1}'])
def test_a_value_that_is_not_a_positive_price_is_refused_and_the_last_good_price_stays(value: bytes) -> None:
    prices = ReferencePrices()
    prices.apply("SIM.AAPL", _value("187.25"))
    with pytest.raises(InvalidPrice):
        prices.apply("SIM.AAPL", value)
    assert prices.get("SIM", "AAPL") == Decimal("187.25")


def test_a_deleted_key_forgets_the_price() -> None:
    prices = ReferencePrices()
    prices.apply("SIM.AAPL", _value("187.25"))
    prices.apply("SIM.AAPL", None)
    assert prices.get("SIM", "AAPL") is None
