from __future__ import annotations

from verticals_echo.model.data import SAMPLE, load_rows, split
from verticals_echo.model.evaluate import metrics
from verticals_echo.model.shipping import SHIPPED
from verticals_echo.model.train import fit


def test_training_on_the_sample_reproduces_the_shipped_model_byte_for_byte():
    train, val = split(load_rows(SAMPLE))
    model = fit(train)
    assert model.to_bytes() == SHIPPED.read_bytes()
    assert metrics(model, val)["accuracy"] == 1.0
