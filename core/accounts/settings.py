"""Settings of dashboard sign-in (``VERTICALS_DASHBOARD_*``) and single sign-on
(``VERTICALS_OIDC_*``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AccountSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_DASHBOARD_", extra="ignore")

    session_hours: float = Field(8.0, gt=0, description="a sign-in ends this long after it began")
    idle_minutes: float = Field(30.0, gt=0, description="...or after this long without a click")
    lockout_failures: int = Field(5, ge=1, description="wrong passwords in a row that lock")
    lockout_minutes: float = Field(15.0, gt=0, description="how long a locked account waits")


class OidcSettings(BaseSettings):
    """Single sign-on through Streamlit's native OIDC (``st.login``), on when a client id and
    the provider's metadata URL are set."""

    model_config = SettingsConfigDict(env_prefix="VERTICALS_OIDC_", extra="ignore")

    server_metadata_url: str | None = None  # .../.well-known/openid-configuration
    client_id: str | None = None
    client_secret: str | None = None
    redirect_uri: str = "http://localhost:8501/oauth2callback"
    cookie_secret: str | None = None  # generated into the home folder when unset
    role_claim: str = "roles"
    tenant_claim: str = "tenant"
    label: str = "Sign in with your organisation"

    @property
    def enabled(self) -> bool:
        return bool(self.server_metadata_url and self.client_id)


@lru_cache(maxsize=1)
def account_settings() -> AccountSettings:
    return AccountSettings()


@lru_cache(maxsize=1)
def oidc_settings() -> OidcSettings:
    return OidcSettings()


def reset_account_settings() -> None:
    account_settings.cache_clear()
    oidc_settings.cache_clear()
