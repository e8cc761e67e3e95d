from __future__ import annotations

import pytest
from verticals.core.auth import Principal, authenticate, create_key, list_keys
from verticals.core.db import session_scope
from verticals.core.db.models import ApiKeyRow
from verticals.core.errors import InvalidInput, Unauthenticated


def test_key_is_random_and_stored_only_as_hash(db):
    with session_scope() as session:
        first = create_key(session, "a", ["finance:score"])
        second = create_key(session, "b", ["*"])
    assert first.key != second.key and first.key.startswith("vk_")
    with session_scope() as session:
        stored = [row.key_hash for row in session.query(ApiKeyRow)]
        assert first.key not in stored and len(stored[0]) == 64
        assert authenticate(session, first.key).scopes == ["finance:score"]
        assert [k.name for k in list_keys(session)] == ["a", "b"]


def test_unknown_key_and_malformed_scopes_are_refused(db):
    with session_scope() as session, pytest.raises(Unauthenticated):
        authenticate(session, "vk_unknown")
    with session_scope() as session, pytest.raises(InvalidInput):
        create_key(session, "bad", ["finance"])


@pytest.mark.parametrize(
    ("scopes", "wanted", "allowed"),
    [
        (["*"], "finance:score", True),
        (["finance:*"], "finance:review", True),
        (["finance:score"], "finance:score", True),
        (["finance:score"], "finance:review", False),
        (["medical:*"], "finance:score", False),
    ],
)
def test_scope_matching(scopes, wanted, allowed):
    assert Principal(key_id=1, name="x", scopes=scopes).allows(wanted) is allowed
