"""retrying: a whole transaction run again on the errors it names, the last failure raised."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from verticals.core.db.session import retrying


def _failing(times: int, error: BaseException):  # noqa: ANN202
    calls = []

    def work() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return work, calls


def test_a_conflict_is_retried_until_it_succeeds():
    work, calls = _failing(2, IntegrityError("insert", {}, Exception("unique")))
    assert retrying(work, attempts=3) == "done" and len(calls) == 3


def test_the_last_failure_is_raised_after_the_attempts():
    work, calls = _failing(5, IntegrityError("insert", {}, Exception("unique")))
    with pytest.raises(IntegrityError):
        retrying(work, attempts=3)
    assert len(calls) == 3


def test_only_the_named_errors_are_retried():
    work, calls = _failing(1, OperationalError("begin", {}, Exception("busy")))
    with pytest.raises(OperationalError):
        retrying(work)
    assert len(calls) == 1
    work, calls = _failing(1, OperationalError("begin", {}, Exception("busy")))
    assert retrying(work, on=(IntegrityError, OperationalError)) == "done" and len(calls) == 2
