"""Typed settings, read from the environment (prefix ``VERTICALS_``) on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".verticals")
    database_url: str | None = None
    environment: str = "development"
    max_request_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"
    # Also load the `verticals.test_domains` entry points (the test suite's plugin); never in
    # production: a test plugin has routes that fail on purpose.
    load_test_plugins: bool = False
    # Requests per API key, per scope: "100/second", "finance:score=500/second,default=100/second"
    # (see verticals.core.serving.ratelimit). Bulk work belongs in the batch routes.
    rate_limit: str = "default=100/second"
    # Every key of one tenant together.
    tenant_rate_limit: str = "1000/second"
    # Failed authentications per client address, before it is answered 429 without a lookup.
    auth_failure_limit: str = "30/minute"
    # Shares the rate-limit buckets across processes and replicas; in-process when unset.
    redis_url: str | None = None
    # Origins allowed to call the API from a browser (comma separated); none by default.
    cors_origins: str = ""
    # /metrics answers anyone (a Prometheus scrape without credentials) instead of demanding
    # a key with the scope `metrics:read`.
    metrics_public: bool = False

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'verticals.db'}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    def ensure_home(self) -> None:
        """Create the home folders; called by commands, never at import."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment and call this)."""
    get_settings.cache_clear()
