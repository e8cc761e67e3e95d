from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def score_key(make_key) -> str:
    return make_key(["finance:score"])


@pytest.fixture
def review_key(make_key) -> str:
    return make_key(["finance:review"])


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    return lambda key: {"Authorization": f"Bearer {key}"}


def tx(i: int, **over) -> dict:
    body = {
        "transaction_id": f"t{i}",
        "tx_datetime": "2018-08-01T10:00:00",
        "customer_id": "c1",
        "terminal_id": "m1",
        "amount": 42.5,
    }
    body.update(over)
    return body


@pytest.fixture
def make_tx() -> Callable[..., dict]:
    return tx
