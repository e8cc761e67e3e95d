"""The echo domain's settings (env prefix ``VERTICALS_ECHO_``), read on first use."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EchoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_ECHO_", extra="ignore")

    min_val_accuracy: float = Field(
        0.9, ge=0.0, le=1.0, description="`train` promotes a model only at or above this"
    )
    max_score_rows: int = Field(10_000, gt=0, description="most rows `score` reads from a file")
    notes_page_size: int = Field(50, gt=0, le=1000, description="notes listed at most")


@lru_cache(maxsize=1)
def get_settings() -> EchoSettings:
    return EchoSettings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment and call this)."""
    get_settings.cache_clear()
