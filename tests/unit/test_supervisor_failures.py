"""What ended a child, as the supervisor's shell tells its core: the failure's kind from Ray's error,
a one-line reason, and a decider's directive from the child's result."""

from __future__ import annotations

import pytest

from supervision.core_events import Exited, Failed
from supervision.decider import Directive, FailureKind
from supervision.failures import classify_failure, describe, ending_event


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (None, FailureKind.PROCESS_DIED),
        (RuntimeError("ActorDiedError: the worker process exited unexpectedly"), FailureKind.PROCESS_DIED),
        (RuntimeError("The actor died because its node died (NodeDiedError)"), FailureKind.NODE_LOST),
        (RuntimeError("the node has been marked dead"), FailureKind.NODE_LOST),
        (RuntimeError("the node was preempted"), FailureKind.PREEMPTED),
    ],
)
def test_the_kind_of_a_failure_is_read_from_its_error(error: BaseException | None, kind: FailureKind) -> None:
    assert classify_failure(error) is kind


def test_a_reason_is_the_errors_type_and_the_first_line_of_its_message() -> None:
    assert describe(ValueError("bad value\ntraceback...")) == "ValueError: bad value"
    assert describe(TimeoutError()) == "TimeoutError: "


def test_a_long_message_is_cut_to_300_characters() -> None:
    assert len(describe(ValueError("x" * 1000))) == len("ValueError: ") + 300


def test_a_call_that_raised_is_a_failure_of_the_errors_kind() -> None:
    event = ending_event("risk-0", 3, None, RuntimeError("node died"))
    assert event == Failed("risk-0", 3, "RuntimeError: node died", FailureKind.NODE_LOST)


def test_a_result_with_a_directive_is_the_deciders_failure() -> None:
    event = ending_event("risk-0", 3, {"directive": "stop", "error": "ValueError: x"}, None)
    assert event == Failed("risk-0", 3, "stop (decider): ValueError: x", FailureKind.HANDLER_ERROR, Directive.STOP)


@pytest.mark.parametrize("result", [{}, {"risk-p0": {"handled": 3}}, None])
def test_any_other_result_is_a_normal_exit(result: object) -> None:
    assert ending_event("risk-0", 3, result, None) == Exited("risk-0", 3)
