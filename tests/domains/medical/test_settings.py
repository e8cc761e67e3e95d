"""The medical domain's settings from the environment."""

from __future__ import annotations


def test_one_batching_field_from_the_environment_keeps_the_domain_defaults(monkeypatch):
    from verticals.domains.medical.settings import MedicalSettings

    monkeypatch.setenv("VERTICALS_MEDICAL_BATCHING__MAX_BATCH_SIZE", "8")
    batching = MedicalSettings().batching
    assert (batching.max_batch_size, batching.max_wait_ms, batching.max_queue) == (8, 5.0, 256)
