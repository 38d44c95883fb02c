"""Pre-trade risk: each rule's boundary, the rejection's details, skipped limits, trading states,
folding fills and done orders into the state, and snapshots."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from actors.domain.risk_rules import RULES, Rejection, check_order
from actors.domain.risk_state import RiskState, TradingState
from cluster.config import RiskLimits
from messages.commands import OrderSpec


def order(qty: int = 100, price: str | None = "10", order_type: str = "LIMIT") -> OrderSpec:
    return OrderSpec(
        order_id="O-1",
        account="ACC1",
        symbol="AAPL",
        side="BUY",
        qty=qty,
        price=None if price is None else Decimal(price),
        order_type=order_type,
    )


def limits(max_order_qty: int | None = None, max_notional: str | None = None) -> RiskLimits:
    return RiskLimits(
        max_order_qty=max_order_qty,
        max_notional=None if max_notional is None else Decimal(max_notional),
    )


@pytest.mark.parametrize(
    ("qty", "price", "max_qty", "max_notional", "rule"),
    [
        # max_order_qty: equal passes, one over rejects
        (500, "1", 500, None, None),
        (501, "1", 500, None, "max_order_qty"),
        (1, "1", 1, None, None),
        (2, "1", 1, None, "max_order_qty"),
        # max_notional: equal passes, a cent over rejects (Decimal, never float)
        (100, "100.01", None, "10001", None),
        (100, "100.02", None, "10001", "max_notional"),
        (3, "0.1", None, "0.3", None),
        (3, "0.10000001", None, "0.3", "max_notional"),
        (10000, "100.00", None, "1000000", None),
        (10001, "100.00", None, "1000000", "max_notional"),
        (10000, "100.00000001", None, "1000000", "max_notional"),
        # both set: quantity is checked first
        (501, "1000", 500, "1", "max_order_qty"),
        (500, "1000", 500, "1", "max_notional"),
        (500, "2", 500, "1000", None),
    ],
)
def test_an_order_passes_at_each_limit_and_is_rejected_just_over_it(
    qty: int, price: str, max_qty: int | None, max_notional: str | None, rule: str | None
) -> None:
    result = check_order(order(qty, price), limits(max_qty, max_notional))
    assert (result.rule if result else None) == rule


def test_a_quantity_rejection_names_the_rule_limit_and_value() -> None:
    assert check_order(order(qty=501), limits(max_order_qty=500)) == Rejection(
        rule="max_order_qty",
        reason="quantity 501 exceeds max_order_qty 500",
        limit="500",
        value="501",
    )


def test_a_notional_rejection_names_the_rule_limit_and_value() -> None:
    rejection = check_order(order(qty=100, price="100.02"), limits(max_notional="10001"))
    assert rejection is not None
    assert (rejection.rule, rejection.limit, rejection.value) == ("max_notional", "10001", "10002.00")
    assert "10002.00" in rejection.reason
    assert "max_notional 10001" in rejection.reason


def test_a_market_order_is_rejected_when_max_notional_is_set() -> None:
    rejection = check_order(order(price=None, order_type="MARKET"), limits(max_notional="1000000"))
    assert rejection == Rejection(
        rule="max_notional",
        reason="a market order has no price to value against max_notional",
        limit="1000000",
        value=None,
    )


def test_a_market_order_passes_when_max_notional_is_not_set() -> None:
    assert check_order(order(price=None, order_type="MARKET"), limits(max_order_qty=500)) is None


def test_a_market_order_over_max_order_qty_is_rejected_for_quantity_first() -> None:
    rejection = check_order(
        order(qty=501, price=None, order_type="MARKET"), limits(max_order_qty=500, max_notional="1")
    )
    assert rejection is not None
    assert rejection.rule == "max_order_qty"


def test_an_order_passes_when_no_limit_is_set() -> None:
    assert check_order(order(qty=10**9, price="99999999"), limits()) is None


def test_every_rule_skips_a_limit_that_is_none() -> None:
    huge = order(qty=10**9, price="99999999")
    assert all(rule(huge, limits()) is None for rule in RULES)


def test_a_rejection_cannot_be_changed() -> None:
    rejection = Rejection(rule="r", reason="why", limit=None, value=None)
    with pytest.raises(AttributeError):
        rejection.rule = "other"  # type: ignore[misc]


# --- stateless rules with a reference price -------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "order_type", "reference", "rule"),
    [
        # collar 5% around 100: 95 and 105 pass, a hair outside rejects
        ("105", "LIMIT", "100", None),
        ("105.00000001", "LIMIT", "100", "collar"),
        ("95", "LIMIT", "100", None),
        ("94.99999999", "LIMIT", "100", "collar"),
        ("100", "LIMIT", "100", None),
        # a market order has no price of its own, so it passes the collar
        (None, "MARKET", "100", None),
        # with no reference price known there is nothing to collar against
        ("1000", "LIMIT", None, None),
    ],
)
def test_a_limit_price_passes_on_the_collar_edge_and_is_rejected_just_outside_it(
    price: str | None, order_type: str, reference: str | None, rule: str | None
) -> None:
    result = check_order(
        order(price=price, order_type=order_type),
        RiskLimits(collar_pct=Decimal(5)),
        reference_price=None if reference is None else Decimal(reference),
    )
    assert (result.rule if result else None) == rule


def test_a_collar_rejection_names_the_percentage_limit_and_the_deviation_seen() -> None:
    rejection = check_order(order(price="105.01"), RiskLimits(collar_pct=Decimal(5)), reference_price=Decimal(100))
    assert rejection is not None
    assert (rejection.rule, rejection.limit, rejection.value) == ("collar", "5", "5.01")
    assert "95 to 105" in rejection.reason


@pytest.mark.parametrize(("symbol", "rule"), [("TSLA", "restricted_symbol"), ("AAPL", None)])
def test_an_order_in_a_restricted_symbol_is_rejected_and_others_pass(symbol: str, rule: str | None) -> None:
    spec = order().model_copy(update={"symbol": symbol})
    result = check_order(spec, RiskLimits(restricted_symbols=("TSLA", "GME")))
    assert (result.rule if result else None) == rule


def test_a_market_order_is_valued_at_the_reference_price_for_max_notional() -> None:
    market = order(qty=100, price=None, order_type="MARKET")
    assert check_order(market, limits(max_notional="10000"), reference_price=Decimal(100)) is None
    rejection = check_order(market, limits(max_notional="10000"), reference_price=Decimal("100.01"))
    assert rejection is not None
    assert (rejection.rule, rejection.value) == ("max_notional", "10001.00")


# --- RiskState: stateful rules ---------------------------------------------------------------------


def spec(
    order_id: str = "N-1",
    *,
    account: str = "ACC1",
    symbol: str = "AAPL",
    side: str = "BUY",
    qty: int = 100,
    price: str | None = "100",
) -> OrderSpec:
    return OrderSpec(
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        qty=qty,
        price=None if price is None else Decimal(price),
        order_type="LIMIT" if price is not None else "MARKET",
    )


def state_with(
    position: int = 0, working_buy: int = 0, working_sell: int = 0, *, symbol: str = "AAPL", price: str = "100"
) -> RiskState:
    """A state holding `position` shares (filled at `price`) and the given working orders."""
    state = RiskState()
    if position:
        side = "BUY" if position > 0 else "SELL"
        state.on_approved(spec("P-1", symbol=symbol, side=side, qty=abs(position), price=price), now=0.0)
        state.on_fill("P-1", abs(position), Decimal(price))
    if working_buy:
        state.on_approved(spec("W-B", symbol=symbol, side="BUY", qty=working_buy, price=price), now=0.0)
    if working_sell:
        state.on_approved(spec("W-S", symbol=symbol, side="SELL", qty=working_sell, price=price), now=0.0)
    return state


def rule_of(rejection: Rejection | None) -> str | None:
    return rejection.rule if rejection else None


@pytest.mark.parametrize(
    ("position", "working_buy", "working_sell", "side", "qty", "rule"),
    [
        # buys: position + working buys + order, up to 1000
        (600, 300, 0, "BUY", 100, None),
        (600, 300, 0, "BUY", 101, "max_position"),
        # working orders on the other side do not offset
        (600, 0, 5000, "BUY", 400, None),
        (600, 0, 5000, "BUY", 401, "max_position"),
        # sells count negative: 600 - 200 - 1400 = -1000
        (600, 0, 200, "SELL", 1400, None),
        (600, 0, 200, "SELL", 1401, "max_position"),
        (-600, 0, 300, "SELL", 100, None),
        (-600, 0, 300, "SELL", 101, "max_position"),
        # an order that only reduces passes even over the limit; one that grows it does not
        (1200, 0, 0, "SELL", 1200, None),
        (1200, 0, 0, "BUY", 1, "max_position"),
        # crossing through zero is checked on the far side
        (600, 0, 0, "SELL", 1600, None),
        (600, 0, 0, "SELL", 1601, "max_position"),
    ],
)
def test_max_position_counts_the_position_and_the_working_orders_on_the_orders_side(
    position: int, working_buy: int, working_sell: int, side: str, qty: int, rule: str | None
) -> None:
    state = state_with(position, working_buy, working_sell)
    result = state.check(spec(side=side, qty=qty), RiskLimits(max_position=1000), Decimal(100), now=1.0)
    assert rule_of(result) == rule


def test_a_max_position_rejection_names_the_limit_and_the_projected_position() -> None:
    state = state_with(600, working_buy=300)
    rejection = state.check(spec(qty=101), RiskLimits(max_position=1000), Decimal(100), now=1.0)
    assert rejection is not None
    assert (rejection.limit, rejection.value) == ("1000", "1001")


def gross_state() -> RiskState:
    """50 AAPL held (bought at 100) and a working MSFT buy of 20 at 100: 7000 of gross exposure."""
    state = state_with(50)
    state.on_approved(spec("W-M", symbol="MSFT", qty=20, price="100"), now=0.0)
    return state


@pytest.mark.parametrize(
    ("side", "qty", "price", "reference", "rule"),
    [
        # 50*100 + 20*100 + 30*100 = 10000
        ("BUY", 30, "100", "100", None),
        ("BUY", 30, "100.01", "100", "max_gross_exposure"),
        # the position is marked at the reference price: 50*110 + 2000 + 2500 = 10000
        ("BUY", 25, "100", "110", None),
        ("BUY", 26, "100", "110", "max_gross_exposure"),
        # a sell that grows exposure (flips short) is counted on its notional too
        ("SELL", 80, "100", "100", "max_gross_exposure"),
        # a sell that only reduces the position passes
        ("SELL", 50, "100", "100", None),
        # a market order is valued at the reference price
        ("BUY", 30, None, "100", None),
        ("BUY", 31, None, "100", "max_gross_exposure"),
    ],
)
def test_gross_exposure_counts_positions_at_their_price_and_working_orders_at_their_notional(
    side: str, qty: int, price: str | None, reference: str, rule: str | None
) -> None:
    limits_ = RiskLimits(max_gross_exposure=Decimal(10000))
    result = gross_state().check(spec(side=side, qty=qty, price=price), limits_, Decimal(reference), now=1.0)
    assert rule_of(result) == rule


def test_a_gross_exposure_rejection_names_the_limit_and_the_total_seen() -> None:
    rejection = gross_state().check(
        spec(qty=30, price="100.01"), RiskLimits(max_gross_exposure=Decimal(10000)), Decimal(100), now=1.0
    )
    assert rejection is not None
    assert (rejection.limit, rejection.value) == ("10000", "10000.30")


def test_other_symbols_are_marked_at_the_given_marks() -> None:
    state = RiskState()
    state.on_approved(spec("P-1", symbol="MSFT", qty=10, price="100"), now=0.0)
    state.on_fill("P-1", 10, Decimal(100))
    # MSFT 10 @ mark 500 = 5000; AAPL order 50 @ 100 = 5000
    limits_ = RiskLimits(max_gross_exposure=Decimal(10000))
    assert state.check(spec(qty=50), limits_, Decimal(100), now=1.0, marks={"MSFT": Decimal(500)}) is None
    assert rule_of(state.check(spec(qty=51), limits_, Decimal(100), 1.0, marks={"MSFT": Decimal(500)})) == (
        "max_gross_exposure"
    )


def test_a_market_order_with_no_price_known_is_rejected_by_gross_exposure() -> None:
    rejection = RiskState().check(
        spec(price=None), RiskLimits(max_gross_exposure=Decimal(10**9)), reference_price=None, now=0.0
    )
    assert rejection is not None
    assert (rejection.rule, rejection.value) == ("max_gross_exposure", None)


class Clock:
    """An injected clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def test_the_throttle_rejects_the_order_over_the_limit_and_passes_once_the_window_slides() -> None:
    clock, state = Clock(), RiskState()
    limits_ = RiskLimits(max_orders_per_window=3, rate_window=1.0)
    decisions = []
    for n, step in enumerate([0.0, 0.25, 0.25, 0.25, 0.25, 0.0, 0.5]):
        clock.advance(step)
        order_ = spec(f"T-{n}", qty=1)
        rejection = state.check(order_, limits_, Decimal(100), clock.now)
        if rejection is None:
            state.on_approved(order_, clock.now, limits=limits_)
        else:
            state.on_rejected(order_.order_id)
        decisions.append((clock.now, rule_of(rejection)))
    assert decisions == [
        (0.0, None),
        (0.25, None),
        (0.5, None),
        (0.75, "max_orders_per_window"),  # a 4th within 1s of the 1st
        (1.0, None),  # the order at 0.0 has left the window (it counts while now - t < window)
        (1.0, "max_orders_per_window"),  # 0.25, 0.5, 1.0 are in the window
        (1.5, None),  # 0.25 and 0.5 have left it
    ]


def test_a_throttle_rejection_names_the_limit_and_the_count_seen() -> None:
    state = RiskState()
    limits_ = RiskLimits(max_orders_per_window=2, rate_window=10.0)
    state.on_approved(spec("T-1"), 0.0)
    state.on_approved(spec("T-2"), 1.0)
    rejection = state.check(spec("T-3"), limits_, Decimal(100), now=2.0)
    assert rejection is not None
    assert (rejection.rule, rejection.limit, rejection.value) == ("max_orders_per_window", "2", "3")


def test_the_throttle_is_per_account() -> None:
    state = RiskState()
    limits_ = RiskLimits(max_orders_per_window=1)
    state.on_approved(spec("T-1", account="ACC1"), 0.0)
    assert rule_of(state.check(spec("T-2", account="ACC1"), limits_, None, 0.5)) == "max_orders_per_window"
    assert state.check(spec("T-3", account="ACC2"), limits_, None, 0.5) is None


def test_a_restricted_symbol_is_rejected_by_the_state_check() -> None:
    rejection = RiskState().check(spec(symbol="TSLA"), RiskLimits(restricted_symbols=("TSLA",)), None, 0.0)
    assert rejection is not None
    assert (rejection.rule, rejection.limit, rejection.value) == ("restricted_symbol", "TSLA", "TSLA")


@pytest.mark.parametrize(("outcome", "order_id", "rule"), [
    ("approved", "D-1", "duplicate_order_id"),
    ("rejected", "D-1", "duplicate_order_id"),
    ("approved", "D-2", None),
])
def test_an_order_id_already_seen_is_rejected_as_a_duplicate(outcome: str, order_id: str, rule: str | None) -> None:
    state = RiskState()
    if outcome == "approved":
        state.on_approved(spec("D-1"), 0.0)
    else:
        state.on_rejected("D-1")
    result = state.check(spec(order_id), RiskLimits(), None, 0.0)
    assert rule_of(result) == rule
    assert state.outcome("D-1") == outcome
    if rule:
        assert (result.limit, result.value) == (None, "D-1")


def test_the_rules_are_checked_in_a_fixed_order() -> None:
    state = state_with(900, working_buy=100)
    state.on_approved(spec("SEEN", qty=1), now=0.9)
    state.set_trading_state(TradingState.HALTED)
    # breaks every rule; each step lifts the rule that rejected it and the next one shows
    order_ = spec("SEEN", qty=200, price="200")
    every: dict[str, object] = {
        "restricted_symbols": ("AAPL",),
        "max_order_qty": 100,
        "max_notional": Decimal(1000),
        "collar_pct": Decimal(5),
        "max_position": 1000,
        "max_gross_exposure": Decimal(1000),
        "max_orders_per_window": 1,
    }
    seen = []
    for _ in range(10):
        rejection = state.check(order_, RiskLimits(**every), Decimal(100), now=1.0)
        seen.append(rule_of(rejection))
        if rejection is None:
            break
        if rejection.rule == "trading_state":
            state.set_trading_state(TradingState.ACTIVE)
        elif rejection.rule == "duplicate_order_id":
            order_ = order_.model_copy(update={"order_id": "FRESH"})
        else:
            every.pop({"restricted_symbol": "restricted_symbols", "collar": "collar_pct"}.get(rejection.rule,
                                                                                          rejection.rule))
    assert seen == [
        "trading_state",
        "restricted_symbol",
        "duplicate_order_id",
        "max_order_qty",
        "max_notional",
        "collar",
        "max_position",
        "max_gross_exposure",
        "max_orders_per_window",
        None,
    ]


def test_a_check_does_not_change_the_state() -> None:
    state = state_with(100, working_buy=50)
    before = state.snapshot()
    state.check(spec(symbol="MSFT", qty=10), RiskLimits(max_position=1), Decimal(100), now=5.0)
    assert state.snapshot() == before


# --- trading states --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("global_state", "acc1_state", "account", "side", "qty", "rule"),
    [
        ("ACTIVE", None, "ACC1", "BUY", 1, None),
        ("HALTED", None, "ACC1", "SELL", 1, "trading_state"),
        ("HALTED", None, "ACC2", "SELL", 1, "trading_state"),
        # an account's own halt stops only that account
        ("ACTIVE", "HALTED", "ACC1", "SELL", 1, "trading_state"),
        ("ACTIVE", "HALTED", "ACC2", "BUY", 1, None),
        # an account cannot be more permissive than the global state
        ("HALTED", "ACTIVE", "ACC1", "SELL", 1, "trading_state"),
        ("REDUCING", "HALTED", "ACC1", "SELL", 1, "trading_state"),
        # reduce-only: ACC1 is long 100 with 60 working to sell; ACC2 is flat
        ("REDUCING", None, "ACC1", "SELL", 40, None),
        ("REDUCING", None, "ACC1", "SELL", 41, "trading_state"),
        ("REDUCING", None, "ACC1", "BUY", 1, "trading_state"),
        ("REDUCING", None, "ACC2", "SELL", 1, "trading_state"),
        ("ACTIVE", "REDUCING", "ACC1", "SELL", 40, None),
        ("ACTIVE", "REDUCING", "ACC1", "BUY", 1, "trading_state"),
        ("ACTIVE", "REDUCING", "ACC2", "BUY", 1, None),
    ],
)
def test_trading_states_halt_or_reduce_globally_or_per_account(
    global_state: str, acc1_state: str | None, account: str, side: str, qty: int, rule: str | None
) -> None:
    state = state_with(100, working_sell=60)
    state.set_trading_state(TradingState(global_state))
    if acc1_state is not None:
        state.set_trading_state(TradingState(acc1_state), account="ACC1")
    result = state.check(spec(account=account, side=side, qty=qty), RiskLimits(), Decimal(100), now=1.0)
    assert rule_of(result) == rule


def test_resuming_after_a_halt_lets_orders_pass_again() -> None:
    state = RiskState()
    state.set_trading_state(TradingState.HALTED, account="ACC1")
    state.set_trading_state(TradingState.ACTIVE, account="ACC1")
    assert state.trading_state("ACC1") is TradingState.ACTIVE
    assert state.check(spec(), RiskLimits(), None, 0.0) is None


def test_a_reduce_only_rejection_names_the_state_and_the_projected_position() -> None:
    state = state_with(100)
    state.set_trading_state(TradingState.REDUCING)
    rejection = state.check(spec(side="SELL", qty=150), RiskLimits(), None, 0.0)
    assert rejection is not None
    assert (rejection.rule, rejection.limit, rejection.value) == ("trading_state", "REDUCING", "-50")


# --- folding fills and done orders -----------------------------------------------------------------


def test_a_fill_moves_quantity_from_working_to_position() -> None:
    state = state_with(working_buy=100)
    assert state.on_fill("W-B", 40, Decimal("99.5"))
    assert (state.position("ACC1", "AAPL"), state.working("ACC1", "AAPL")) == (40, (60, 0))
    assert state.last_price("AAPL") == Decimal("99.5")


def test_a_done_order_releases_its_remaining_working_quantity() -> None:
    state = state_with(working_buy=100, working_sell=30)
    state.on_fill("W-B", 40, Decimal(100))
    assert state.on_done("W-B")
    assert (state.position("ACC1", "AAPL"), state.working("ACC1", "AAPL")) == (40, (0, 30))
    assert state.gross_exposure("ACC1") == Decimal(7000)  # 40 held + 30 working, at 100


def test_released_exposure_lets_an_order_pass_that_was_rejected_before() -> None:
    state = state_with(working_buy=1000)
    limits_ = RiskLimits(max_position=1000)
    assert rule_of(state.check(spec(qty=1), limits_, None, 1.0)) == "max_position"
    state.on_done("W-B")
    assert state.check(spec(qty=1), limits_, None, 1.0) is None


def test_a_full_fill_finishes_the_order() -> None:
    state = state_with(working_sell=100)
    state.on_fill("W-S", 100, Decimal(100))
    assert state.working("ACC1", "AAPL") == (0, 0)
    assert state.position("ACC1", "AAPL") == -100
    assert not state.on_done("W-S")
    assert not state.on_fill("W-S", 1, Decimal(100))


def test_the_same_exec_id_is_folded_once() -> None:
    state = state_with(working_buy=100)
    assert state.on_fill("W-B", 10, Decimal(100), exec_id="E-1")
    assert not state.on_fill("W-B", 10, Decimal(100), exec_id="E-1")
    assert state.position("ACC1", "AAPL") == 10


def test_an_order_approved_twice_is_counted_once() -> None:
    state = RiskState()
    assert state.on_approved(spec("A-1"), 0.0)
    assert not state.on_approved(spec("A-1"), 0.0)
    assert state.working("ACC1", "AAPL") == (100, 0)


# --- snapshots -------------------------------------------------------------------------------------


def busy_state() -> RiskState:
    state = state_with(300, working_buy=200, working_sell=50)
    state.on_approved(spec("M-1", symbol="MSFT", side="SELL", qty=70, price=None), 0.5, reference_price=Decimal(250))
    state.on_approved(spec("M-2", account="ACC2", symbol="MSFT", qty=10, price="249"), 0.75)
    state.on_fill("M-2", 4, Decimal(249), exec_id="X-1")
    state.on_fill("W-B", 20, Decimal("100.5"), exec_id="X-2")
    state.on_rejected("R-1")
    state.set_trading_state(TradingState.REDUCING, account="ACC2")
    return state


PROBES = [
    (spec("R-1"), 1.0),
    (spec("P-2", qty=600), 1.0),
    (spec("P-3", qty=300), 1.0),
    (spec("P-4", side="SELL", qty=900), 1.2),
    (spec("P-5", account="ACC2", symbol="MSFT", side="SELL", qty=4), 1.2),
    (spec("P-6", account="ACC2", symbol="MSFT", qty=1), 1.2),
    (spec("P-7", symbol="MSFT", qty=100, price="240"), 1.3),
    (spec("P-8", price="106"), 1.6),
    (spec("P-9", qty=1, price=None), 0.9),
]
PROBE_LIMITS = RiskLimits(
    max_position=800,
    max_gross_exposure=Decimal(150_000),
    collar_pct=Decimal(5),
    max_orders_per_window=3,
    rate_window=1.0,
)


def test_a_snapshot_is_json_and_restores_an_equal_state() -> None:
    state = busy_state()
    restored = RiskState.restore(json.loads(json.dumps(state.snapshot())))
    assert restored == state
    assert restored.snapshot() == state.snapshot()


def test_a_restored_state_makes_the_same_decisions() -> None:
    state = busy_state()
    restored = RiskState.restore(json.loads(json.dumps(state.snapshot())))
    decisions = [state.check(o, PROBE_LIMITS, Decimal(100), now) for o, now in PROBES]
    assert [restored.check(o, PROBE_LIMITS, Decimal(100), now) for o, now in PROBES] == decisions
    assert len({rule_of(d) for d in decisions}) >= 5  # the probes exercise several rules


def test_a_restored_state_folds_later_events_the_same_way() -> None:
    state = busy_state()
    restored = RiskState.restore(json.loads(json.dumps(state.snapshot())))
    for s in (state, restored):
        s.on_fill("M-1", 70, Decimal(251))
        s.on_done("W-S")
        s.on_fill("M-2", 4, Decimal(249), exec_id="X-1")  # a repeat
    assert restored == state


def test_a_snapshot_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        RiskState.restore({"version": 99})
