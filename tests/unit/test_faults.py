"""Injected handler errors (FaultPoints.arm_error): a named exception type for the next N messages."""

from __future__ import annotations

import pytest

from actors.runtime.faults import FaultPoints, injected_error
from supervision.decider import Decider, Directive


def test_an_armed_error_raises_the_named_type_for_the_next_n_messages_then_stops() -> None:
    faults = FaultPoints()
    faults.arm_error("InjectedFault", count=2)
    for _ in range(2):
        with pytest.raises(injected_error("InjectedFault")) as info:
            faults.maybe_raise()
        assert type(info.value).__name__ == "InjectedFault"
    faults.maybe_raise()  # the third message goes through
    assert faults.raised == {"InjectedFault": 2}


def test_a_disarmed_fault_points_raises_nothing() -> None:
    faults = FaultPoints()
    faults.maybe_raise()
    faults.arm_error("InjectedFault", count=3)
    faults.disarm_error()
    faults.maybe_raise()
    assert faults.raised == {}


def test_the_same_name_is_the_same_class_and_other_names_are_not_matched() -> None:
    assert injected_error("InjectedFault") is injected_error("InjectedFault")
    assert injected_error("OtherFault") is not injected_error("InjectedFault")
    faults = FaultPoints()
    faults.arm_error("OtherFault")
    with pytest.raises(injected_error("OtherFault")):
        faults.maybe_raise()
    assert not issubclass(injected_error("OtherFault"), injected_error("InjectedFault"))


def test_a_decider_keyed_by_the_name_matches_the_injected_error() -> None:
    decider = Decider({"InjectedFault": "restart"}, default=Directive.RESUME)
    assert decider.decide(injected_error("InjectedFault")("boom")) is Directive.RESTART
    assert decider.decide(injected_error("OtherFault")("boom")) is Directive.RESUME


@pytest.mark.parametrize(("name", "count"), [("not a name", 1), ("", 1), ("InjectedFault", 0)])
def test_arming_with_a_bad_name_or_count_is_refused(name: str, count: int) -> None:
    with pytest.raises(ValueError):
        FaultPoints().arm_error(name, count)


def test_a_directive_survives_a_process_boundary_even_when_its_cause_class_does_not():
    import pickle

    from actors.runtime.stage import Directed

    sent = Directed("restart", injected_error("OnlyHereFault")("boom"))
    received = pickle.loads(pickle.dumps(sent))
    assert received.directive == "restart"
    assert str(received.cause) == "OnlyHereFault: boom"
