"""The echo router, mounted at ``/v1/echo``: parse → service → schema, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from verticals.core.auth import Principal
from verticals.core.serving.deps import audit_context, require_scope

from verticals_echo import NAME
from verticals_echo.schemas import NoteIn, NoteOut, NotesOut, ScoreIn, ScoreOut
from verticals_echo.service import EchoService


def build_router(service: EchoService) -> APIRouter:
    router = APIRouter()

    @router.post("/score", response_model=ScoreOut)
    def score(
        body: ScoreIn,
        request: Request,
        principal: Annotated[Principal, Depends(require_scope(f"{NAME}:score"))],
    ) -> Any:
        """Score three numbers; a retried ``request_id`` returns the stored answer."""
        return service.score_request(audit_context(request, principal, NAME), body)

    @router.post("/notes", response_model=NoteOut, status_code=201)
    def add_note(
        body: NoteIn, principal: Annotated[Principal, Depends(require_scope(f"{NAME}:write"))]
    ) -> NoteOut:
        return service.add_note(principal, body.text)

    @router.get("/notes", response_model=NotesOut)
    def list_notes(
        principal: Annotated[Principal, Depends(require_scope(f"{NAME}:read"))],
    ) -> NotesOut:
        return NotesOut(notes=service.list_notes(principal))

    # Test-suite copy only: a route that fails on purpose, for the error-handling tests
    # (a 500 with a request id and no traceback). Not in what `new-domain` generates.
    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    return router
