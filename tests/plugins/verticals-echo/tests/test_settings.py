from __future__ import annotations

import pytest
from pydantic import ValidationError

from verticals_echo.settings import EchoSettings


def test_settings_read_their_prefix(monkeypatch):
    monkeypatch.setenv("VERTICALS_ECHO_MIN_VAL_ACCURACY", "0.5")
    assert EchoSettings().min_val_accuracy == 0.5


def test_out_of_range_settings_are_refused_by_name(monkeypatch):
    monkeypatch.setenv("VERTICALS_ECHO_MIN_VAL_ACCURACY", "2")
    with pytest.raises(ValidationError, match="min_val_accuracy"):
        EchoSettings()
