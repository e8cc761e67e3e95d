"""Single sign-on wiring: the ``[auth]`` secrets Streamlit's native OIDC (``st.login``) reads,
written from ``VERTICALS_OIDC_*`` into the home folder (readable by this user only)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from verticals.core.accounts.settings import OidcSettings


def _cookie_secret(settings: OidcSettings, folder: Path) -> str:
    """The configured cookie secret, or one generated once and kept beside the secrets file
    (so a restart does not sign everybody out)."""
    if settings.cookie_secret:
        return settings.cookie_secret
    kept = folder / "cookie_secret"
    if not kept.exists():
        kept.write_text(secrets.token_urlsafe(32))
        kept.chmod(0o600)
    return kept.read_text().strip()


def write_streamlit_secrets(settings: OidcSettings, home: Path) -> Path | None:
    """The secrets file to pass as ``--secrets.files``; None when single sign-on is off."""
    if not settings.enabled:
        return None
    folder = home / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    values = {
        "redirect_uri": settings.redirect_uri,
        "cookie_secret": _cookie_secret(settings, folder),
        "client_id": settings.client_id,
        "client_secret": settings.client_secret or "",
        "server_metadata_url": settings.server_metadata_url,
    }
    # TOML basic strings are JSON strings: json.dumps quotes and escapes them correctly.
    lines = ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    path = folder / "secrets.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    return path
