"""The guard swallows (and logs once) internal errors, and re-raises them under pytest."""

from __future__ import annotations

import logging

import pytest

from heron.agent import guard
from heron.agent.guard import capture_internal_exceptions, guarded


def _fail() -> None:
    raise ValueError("heron bug")


@pytest.mark.swallows_internal_errors
def test_internal_errors_are_swallowed_and_logged_once_per_site(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = guard.internal_error_count()
    for _ in range(3):
        with capture_internal_exceptions:
            _fail()
    assert guard.internal_error_count() == before + 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "heron agent internal error" in errors[0].getMessage()


@pytest.mark.swallows_internal_errors
def test_guarded_functions_return_their_default() -> None:
    @guarded(default=-1)
    def compute() -> int:
        raise RuntimeError("heron bug")

    assert compute() == -1
    assert compute.__name__ == "compute"


def test_under_pytest_internal_errors_are_raised(internal_errors: list[BaseException]) -> None:
    with pytest.raises(ValueError, match="heron bug"), capture_internal_exceptions:
        _fail()
    internal_errors.clear()  # expected here; any other would fail this test at teardown


def test_under_pytest_reported_errors_fail_the_test(internal_errors: list[BaseException]) -> None:
    with pytest.raises(ValueError):
        guarded(default=None)(_fail)()
    assert len(internal_errors) == 1
    internal_errors.clear()  # expected here; any other would fail this test at teardown


@pytest.mark.swallows_internal_errors
def test_interrupts_are_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt), capture_internal_exceptions:
        raise KeyboardInterrupt
