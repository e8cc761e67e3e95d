"""What the OpenAPI promises about every route: the error answers and their body, datetimes
with an offset, and schemas whose references resolve."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import AfterValidator, BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"], description="stable, machine-readable")
    message: str = Field(description="for people; may change")
    details: Any = Field(None, description="what failed, when known: fields, limits, ids")


class ErrorBody(BaseModel):
    """Every error answer of the API, whatever its status."""

    error: ErrorDetail


_ERRORS = {
    400: "Malformed request (body that is not JSON, a bad upload)",
    401: "Missing, unknown, expired or revoked API key",
    403: "The API key lacks the scope this route needs",
    404: "No such resource (for this tenant)",
    409: "Conflicts with what is stored (an id reused with another body)",
    413: "Body, upload or batch over its limit",
    415: "Unsupported content type",
    422: "Request failed validation",
    429: "Rate limit or failed-authentication limit reached; see Retry-After",
    503: "Model not loaded, or the server is overloaded; see Retry-After when given",
}

# Given to every domain router when it is mounted, so each operation documents them.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()
}


def as_utc(value: datetime) -> datetime:
    """Naive values are UTC (how the databases hand them back); aware ones are converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# An output datetime that always serialises with its offset (``...+00:00``): a valid
# OpenAPI ``date-time``.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move nested ``$defs`` (a pydantic ``model_json_schema()`` pasted into ``openapi_extra``)
    into ``components/schemas`` and point their ``#/$defs/X`` references there."""
    if isinstance(node, dict):
        for name, schema in (node.pop("$defs", None) or {}).items():
            schemas.setdefault(name, _hoist_defs(schema, schemas))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for key, value in node.items():
            node[key] = _hoist_defs(value, schemas)
    elif isinstance(node, list):
        return [_hoist_defs(item, schemas) for item in node]
    return node


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def install_contract(app: FastAPI, *, secured_prefix: str = "/v1/") -> None:
    """Wrap ``app.openapi`` so the document it serves has no dangling ``$defs`` references and
    says that operations under ``secured_prefix`` need an API key (either header)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            document["paths"] = _hoist_defs(document.get("paths", {}), schemas)
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
            for path, operations in document["paths"].items():
                if path.startswith(secured_prefix):
                    for operation in operations.values():
                        if isinstance(operation, dict):
                            operation.setdefault("security", [{"bearer": []}, {"apiKey": []}])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
