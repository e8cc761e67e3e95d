"""The finance domain's settings from the environment."""

from __future__ import annotations


def test_one_batching_field_from_the_environment_keeps_the_domain_defaults(monkeypatch):
    from verticals.domains.finance.settings import ServingConfig

    monkeypatch.setenv("VERTICALS_FINANCE_BATCHING__WORKERS", "2")
    batching = ServingConfig().batching
    assert (batching.max_batch_size, batching.max_queue, batching.workers) == (64, 2048, 2)
