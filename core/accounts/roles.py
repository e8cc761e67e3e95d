"""Roles of dashboard users, each the same scopes an API key would carry."""

from __future__ import annotations

from verticals.core.errors import InvalidInput

USER_ADMIN_SCOPE = "users:manage"

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "admin": ("*",),
    "clinician": ("medical:read", "medical:write"),
    "fraud-analyst": ("finance:read", "finance:review"),
    "maintenance-planner": ("manufacturing:*",),
    "viewer": ("*:read",),
}


def scopes_for(role: str) -> list[str]:
    return list(ROLE_SCOPES[checked_role(role)])


def checked_role(role: str) -> str:
    if role not in ROLE_SCOPES:
        raise InvalidInput(
            f"unknown role {role!r}", {"field": "role", "allowed": sorted(ROLE_SCOPES)}
        )
    return role
