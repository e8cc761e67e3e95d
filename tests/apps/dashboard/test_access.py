"""Sign-in, roles and accountability in the dashboard, through Streamlit's AppTest."""

from __future__ import annotations

import pytest
from verticals.apps.dashboard.access import TOKEN


def _run(app):  # noqa: ANN001, ANN202
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _sign_in_with_form(app, name: str, password: str):  # noqa: ANN001, ANN202
    app.text_input[0].input(name)
    app.text_input[1].input(password)
    app.button[0].click()
    return _run(app)


def test_signed_out_sees_only_the_sign_in_form_on_any_path(app, pages):
    _run(app)
    assert app.subheader[0].value == "Sign in"
    assert set(pages(app)) <= {"", "sign-in"}
    assert not app.dataframe and not app.sidebar.button
    # a page hash of a domain page (as a hand-typed URL would ask for) still gives sign-in
    app._page_hash = "echo"
    _run(app)
    assert app.subheader[0].value == "Sign in" and not app.dataframe


def test_right_password_signs_in_and_sign_out_ends_the_session(app, pages, make_user):
    from verticals.core.accounts.sessions import session_principal

    user = make_user("admin", "root")
    _sign_in_with_form(_run(app), "root", user.password)
    assert app.title[0].value == "verticals"
    token = app.session_state[TOKEN]
    assert session_principal(token).name == "root"
    assert any("Signed in as **root**" in c.value for c in app.sidebar.caption)
    app.sidebar.button(key="sign_out").click()
    _run(app)
    assert app.subheader[0].value == "Sign in"
    assert session_principal(token) is None


def test_wrong_password_is_refused_counted_and_locks(app, pages, make_user, monkeypatch):
    from verticals.core.accounts.settings import reset_account_settings
    from verticals.core.accounts.users import list_users
    from verticals.core.db import session_scope

    monkeypatch.setenv("VERTICALS_DASHBOARD_LOCKOUT_FAILURES", "3")
    reset_account_settings()
    user = make_user("clinician", "carol")
    try:
        _run(app)
        for attempt in (1, 2):
            _sign_in_with_form(app, "carol", "not-the-password")
            assert app.error[0].value == "Wrong user name or password."
            with session_scope() as session:
                assert list_users(session)[0].failed_sign_ins == attempt
        _sign_in_with_form(app, "carol", "still-wrong")  # the third: locked
        _sign_in_with_form(app, "carol", user.password)  # even the right one now
        assert "locked" in app.error[0].value
        assert TOKEN not in app.session_state
        _sign_in_with_form(app, "nobody", "x")
        assert app.error[0].value == "Wrong user name or password."
    finally:
        reset_account_settings()


def test_clinician_sees_medical_and_not_finance(app, pages, signed_in):
    signed_in(app, "clinician")
    _run(app)
    pages = pages(app)
    assert "medical" in pages and "finance" not in pages and "users" not in pages
    assert "echo" not in pages
    assert set(app.dataframe[0].value["domain"]) == {"medical"}


def test_a_page_checks_the_role_again_when_it_renders(app, pages, signed_in, make_user):
    """A clinician's browser that asks for the admin's finance page (a stale or typed URL)."""
    from verticals.core.accounts.sessions import sign_in

    admin = signed_in(app, "admin")
    _run(app)
    finance = pages(app)["finance"]
    clinician = make_user("clinician", "cleo")
    app.session_state[TOKEN] = sign_in(clinician.name, clinician.password).token
    app._page_hash = finance
    _run(app)
    assert not [t for t in app.title if t.value == "Card fraud"]
    assert app.title[0].value == "verticals"  # the clinician's own home page instead
    assert any(f"**{clinician.name}**" in c.value for c in app.sidebar.caption)
    assert admin.name not in " ".join(c.value for c in app.sidebar.caption)


def test_disabled_user_is_out_at_the_next_click(app, pages, signed_in):
    from verticals.core.accounts.users import disable_user
    from verticals.core.db import session_scope

    user = signed_in(app, "viewer")
    _run(app)
    assert app.title[0].value == "verticals"
    with session_scope() as session:
        disable_user(session, user.name)
    _run(app)
    assert app.subheader[0].value == "Sign in"


def test_admin_page_creates_users_and_lists_their_actions(app, pages, signed_in):
    from verticals.core.accounts.sessions import sign_in

    signed_in(app, "admin", "boss")
    _run(app)
    app._page_hash = pages(app)["users"]
    _run(app)
    assert app.title[0].value == "Users"
    app.text_input[0].input("newbie")
    app.selectbox[0].select("fraud-analyst")
    next(b for b in app.button if b.label == "Create").click()
    _run(app)
    password = app.code[0].value
    assert sign_in("newbie", password).principal.role == "fraud-analyst"
    _run(app)
    users = app.dataframe[0].value
    assert set(users["name"]) == {"boss", "newbie"}
    assert users.set_index("name").loc["newbie", "last sign-in"] != "never"
    actions = app.dataframe[1].value
    created = actions[actions["action"] == "user.create"].set_index("target")
    assert created.loc["newbie", "who"] == "boss" and created.loc["newbie", "role"] == "admin"
    assert created.loc["boss", "who"] == "cli operator"  # the fixture made boss as the CLI does


@pytest.mark.parametrize("role", ["clinician", "fraud-analyst", "viewer"])
def test_only_admins_get_the_users_page(app, pages, signed_in, role):
    signed_in(app, role)
    _run(app)
    assert "users" not in pages(app)


@pytest.fixture
def sso_on(monkeypatch):
    from verticals.core.accounts.settings import reset_account_settings

    monkeypatch.setenv("VERTICALS_OIDC_SERVER_METADATA_URL", "http://idp/.well-known/x")
    monkeypatch.setenv("VERTICALS_OIDC_CLIENT_ID", "dashboard")
    reset_account_settings()
    yield
    reset_account_settings()


def test_single_sign_on_identity_opens_a_session_with_its_role(app, pages, sso_on):
    app.user = {
        "is_logged_in": True,
        "iss": "http://idp",
        "sub": "9",
        "email": "dr@h.org",
        "roles": ["clinician"],
        "tenant": "st-mary",
    }
    _run(app)
    assert any("**dr@h.org** · clinician · st-mary" in c.value for c in app.sidebar.caption)
    assert "medical" in pages(app) and "finance" not in pages(app)


def test_single_sign_on_without_a_role_shows_why_and_nothing_else(app, pages, sso_on):
    app.user = {"is_logged_in": True, "iss": "http://idp", "sub": "9", "roles": ["guest"]}
    _run(app)
    assert "no verticals role" in app.error[0].value
    assert set(pages(app)) <= {"", "sign-in"} and not app.dataframe
