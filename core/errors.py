"""The error hierarchy. Each class carries its HTTP status; one handler renders them all.

Error body: ``{"error": {"code": str, "message": str, "details": object}}``.
"""

from __future__ import annotations

from typing import Any


class VerticalsError(Exception):
    status_code: int = 500
    code: str = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, details: Any = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(VerticalsError):
    status_code = 422
    code = "invalid_input"


class BadRequest(VerticalsError):
    status_code = 400
    code = "bad_request"


class Unauthenticated(VerticalsError):
    status_code = 401
    code = "unauthenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(VerticalsError):
    status_code = 403
    code = "forbidden"


class NotFound(VerticalsError):
    status_code = 404
    code = "not_found"


class Conflict(VerticalsError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(VerticalsError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(VerticalsError):
    status_code = 415
    code = "unsupported_media_type"


class RateLimited(VerticalsError):
    """The caller spent its request budget; ``headers`` say when to come back."""

    status_code = 429
    code = "rate_limited"

    def __init__(
        self, message: str, details: Any = None, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, details)
        self.headers = headers


class Overloaded(VerticalsError):
    status_code = 503
    code = "overloaded"

    def __init__(self, message: str, details: Any = None, *, retry_after_s: int = 1) -> None:
        super().__init__(message, details)
        self.headers = {"Retry-After": str(retry_after_s)}


class ModelUnavailable(VerticalsError):
    status_code = 503
    code = "model_unavailable"


class Timeout(VerticalsError):
    status_code = 504
    code = "timeout"


class IntegrityError(VerticalsError):
    """An artifact failed its sha256 check, or stored state is inconsistent."""

    status_code = 500
    code = "integrity_error"
