"""The real dashboard server in a headless browser: signed out on a typed URL, a local sign-in,
and single sign-on against a local mock identity provider (oidc-provider-mock).

Needs a Chromium on PATH (`apt-get install chromium`; .ci/run installs it) and Playwright's
Python package; skipped with the reason otherwise. Nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
oidc_mock = pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def identity_provider() -> Iterator[str]:
    with oidc_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def dashboard(database_url, verticals_home, identity_provider) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VERTICALS_DATABASE_URL": database_url,
        "VERTICALS_HOME": str(verticals_home),
        "VERTICALS_OIDC_SERVER_METADATA_URL": (
            f"{identity_provider}/.well-known/openid-configuration"
        ),
        "VERTICALS_OIDC_CLIENT_ID": "verticals-dashboard",
        "VERTICALS_OIDC_CLIENT_SECRET": "not-a-real-secret",
        "VERTICALS_OIDC_REDIRECT_URI": f"{url}/oauth2callback",
        "VERTICALS_OIDC_LABEL": "Sign in with Test Hospital",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from verticals.apps.cli.main import main; main()",
            "dashboard",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, "the dashboard exited"
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


def test_sign_in_in_a_real_browser_local_and_single_sign_on(
    dashboard, identity_provider, browser, make_user
):
    expect = playwright_api.expect
    clinician = make_user("clinician", "dr-local")

    page = browser.new_page()
    # signed out: a typed URL of a domain page shows the sign-in form and nothing else
    page.goto(f"{dashboard}/finance")
    expect(page.get_by_text("Sign in", exact=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Card fraud")).to_have_count(0)
    expect(page.get_by_text("Review queue")).to_have_count(0)

    expect(page.get_by_text("Page not found")).to_be_visible()  # Streamlit's own notice
    page.keyboard.press("Escape")
    page.get_by_label("User name").fill("dr-local")
    page.get_by_role("textbox", name="Password").fill(clinician.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Medical imaging")).to_be_visible()
    expect(nav.get_by_text("Card fraud")).to_have_count(0)
    page.close()

    # single sign-on: the provider vouches for a fraud analyst of tenant "bank-a"
    httpx.put(
        f"{identity_provider}/users/analyst-7",
        json={"preferred_username": "ana.sso", "roles": ["fraud-analyst"], "tenant": "bank-a"},
    ).raise_for_status()
    page = browser.new_page()
    page.goto(dashboard)
    page.get_by_role("button", name="Sign in with Test Hospital").click(timeout=60_000)
    page.locator("input[name=sub]").fill("analyst-7")
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("fraud-analyst · bank-a")).to_be_visible()
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Card fraud")).to_be_visible()
    expect(nav.get_by_text("Medical imaging")).to_have_count(0)
    page.close()

    from verticals.core.accounts.users import list_users
    from verticals.core.db import session_scope

    with session_scope() as session:
        users = {u.name: u for u in list_users(session)}
    assert users["ana.sso"].source == "oidc" and users["ana.sso"].tenant == "bank-a"
    assert users["ana.sso"].last_sign_in_at is not None
