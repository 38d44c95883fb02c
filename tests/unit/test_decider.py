"""Deciders: directives by exception class (most specific first) or by a remote failure's type name."""

from __future__ import annotations

import pytest

from supervision.decider import Decider, Directive, FailureKind, counts_against_intensity


class VenueError(Exception):
    pass


class VenueRejected(VenueError):
    pass


class RayTaskError(Exception):  # stands in for ray.exceptions.RayTaskError: no Ray import in unit tests
    pass


def _ray_wrapped(cause: type[BaseException]) -> type[BaseException]:
    """Ray's dual class: subclasses RayTaskError and the remote error's class, named 'RayTaskError(Cause)'."""
    name = f"RayTaskError({cause.__name__})"
    return type(name, (RayTaskError, cause), {"__qualname__": name})


DECIDER = Decider(
    {
        "TimeoutError": Directive.RESUME,
        OSError: Directive.RESTART,
        ConnectionRefusedError: Directive.STOP,
        VenueError: Directive.ESCALATE,
        "VenueRejected": Directive.RESUME,
        KeyboardInterrupt: Directive.ESCALATE,
    },
    default=Directive.STOP,
)


@pytest.mark.parametrize(
    ("failure", "directive"),
    [
        (TimeoutError("venue silent"), Directive.RESUME),  # by name
        (TimeoutError(), Directive.RESUME),  # the same class since 3.11
        (ConnectionRefusedError(), Directive.STOP),  # its own entry beats OSError's
        (ConnectionResetError(), Directive.RESTART),  # via OSError
        (OSError(), Directive.RESTART),
        (VenueRejected(), Directive.RESUME),  # its name entry beats the base class's entry
        (VenueError(), Directive.ESCALATE),
        (ValueError(), Directive.STOP),  # unmapped: the default
        (KeyboardInterrupt(), Directive.ESCALATE),
        (ConnectionRefusedError, Directive.STOP),  # a class works like an instance
        (_ray_wrapped(ConnectionResetError)(), Directive.RESTART),  # a Ray-wrapped error: the cause's MRO
    ],
    ids=repr,
)
def test_decide_walks_the_exception_class_hierarchy_most_specific_first(failure: BaseException,
                                                                       directive: Directive) -> None:
    assert DECIDER.decide(failure) is directive


@pytest.mark.parametrize(
    ("name", "directive"),
    [
        ("TimeoutError", Directive.RESUME),
        ("TimeoutError: venue did not answer within 2s", Directive.RESUME),
        ("ConnectionRefusedError", Directive.STOP),  # a builtin: its class's entry
        ("BrokenPipeError", Directive.RESTART),  # a builtin: resolved, so OSError's entry applies
        ("builtins.ConnectionResetError", Directive.RESTART),
        ("VenueError", Directive.ESCALATE),  # a class key matches by the class's name
        ("tests.unit.test_decider.VenueError", Directive.ESCALATE),
        ("VenueRejected: duplicate order id", Directive.RESUME),
        ("RayTaskError(TimeoutError): ...", Directive.RESUME),  # Ray's name for a wrapped remote error
        ("RayTaskError(BrokenPipeError)", Directive.RESTART),
        ("SomethingUnheardOf", Directive.STOP),  # unknown, not a builtin: the default
        ("", Directive.STOP),
    ],
)
def test_decide_matches_a_remote_failures_type_name(name: str, directive: Directive) -> None:
    assert DECIDER.decide(name) is directive


def test_a_decider_with_no_mapping_restarts_everything() -> None:
    decider = Decider()
    assert [decider.decide(x) for x in (ValueError(), "TimeoutError", SystemExit())] == [Directive.RESTART] * 3


def test_directives_may_be_given_by_value() -> None:
    decider = Decider({"ValueError": "stop"}, default="escalate")
    assert (decider.decide(ValueError()), decider.decide(KeyError())) == (Directive.STOP, Directive.ESCALATE)


@pytest.mark.parametrize("mapping", [{42: Directive.STOP}, {int: Directive.STOP}, {" ": Directive.STOP}], ids=repr)
def test_a_key_that_is_neither_an_exception_class_nor_a_name_is_rejected(mapping: dict) -> None:
    with pytest.raises(TypeError):
        Decider(mapping)


def test_an_unknown_directive_is_rejected() -> None:
    with pytest.raises(ValueError):
        Decider({"ValueError": "reboot"})


@pytest.mark.parametrize(
    ("kind", "counts"),
    [
        (FailureKind.PROCESS_DIED, True),
        (FailureKind.HUNG, True),
        (FailureKind.HANDLER_ERROR, True),
        (FailureKind.NODE_LOST, False),
        (FailureKind.PREEMPTED, False),
        ("preempted", False),
    ],
)
def test_only_the_childs_own_failures_count_against_restart_intensity(kind: FailureKind, counts: bool) -> None:
    assert counts_against_intensity(kind) is counts
