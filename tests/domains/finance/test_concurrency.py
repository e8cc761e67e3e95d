"""Concurrent requests for one customer and one terminal lose no state update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from verticals.core.db import session_scope
from verticals.domains.finance.tables import CustomerStateRow, TerminalStateRow, TransactionRow


def test_concurrent_scores_for_one_customer_and_terminal(client, score_key, auth, make_tx) -> None:
    n_threads, per_thread = 8, 12

    def worker(k: int) -> list[int]:
        codes = []
        for j in range(per_thread):
            i = k * per_thread + j
            body = make_tx(i, amount=float(i + 1), tx_datetime=f"2018-08-0{1 + i % 3}T12:00:00")
            if j % 3 == 0:  # mix in batches, which take the other path
                r = client.post(
                    "/v1/finance/transactions:batch", json={"transactions": [body]},
                    headers=auth(score_key),
                )
            else:
                r = client.post(
                    "/v1/finance/transactions:score", json=body, headers=auth(score_key)
                )
            codes.append(r.status_code)
        return codes

    with ThreadPoolExecutor(n_threads) as pool:
        codes = [c for chunk in pool.map(worker, range(n_threads)) for c in chunk]
    assert codes == [200] * (n_threads * per_thread)
    total = n_threads * per_thread
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(TransactionRow)) == total
        customer = s.get(CustomerStateRow, ("default", "c1")).buckets
        terminal = s.get(TerminalStateRow, ("default", "m1")).buckets
    assert sum(b[0] for b in customer.values()) == total
    assert sum(b[0] for b in terminal.values()) == total
    assert abs(sum(b[1] for b in customer.values()) - sum(range(1, total + 1))) < 1e-6


def test_two_replicas_scoring_the_same_card_in_parallel(db, make_tx) -> None:
    """Two services (as two API replicas would) write the same customer's state at once."""
    from verticals.core.audit import AuditContext
    from verticals.domains.finance.model.production import (
        ensure_production_model,
        load_production_model,
    )
    from verticals.domains.finance.schemas import TransactionIn
    from verticals.domains.finance.scoring import ScoreRequest, ScoringService
    from verticals.domains.finance.settings import DecisionConfig, ServingConfig

    ensure_production_model()
    replicas = [
        ScoringService(load_production_model(), DecisionConfig(), ServingConfig()) for _ in range(2)
    ]
    ctx = AuditContext(request_id="r", api_key_id=None, domain="finance", route="test")

    def worker(k: int) -> None:
        for j in range(15):
            i = k * 100 + j
            body = TransactionIn.model_validate(make_tx(i, terminal_id=f"m{j % 2}"))
            result = replicas[k % 2].score_many([ScoreRequest.of(body, ctx)])
            assert not isinstance(result[0], Exception)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    with session_scope() as s:
        customer = s.get(CustomerStateRow, ("default", "c1")).buckets
    assert sum(b[0] for b in customer.values()) == 60
