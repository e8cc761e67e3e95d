"""The echo domain: everything a plugin can do, in as few lines as possible."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.audit import Outcome, audited
from verticals.core.auth import Principal
from verticals.core.db import Base, session_scope
from verticals.core.errors import InvalidInput
from verticals.core.plugins import Domain, DomainStatus
from verticals.core.registry import ModelCard, production_version, register, verified_artifact
from verticals.core.serving.deps import audit_context, require_scope

PACKAGE = Path(__file__).parent


class EchoNote(Base):
    __tablename__ = "echo_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


class ScoreIn(BaseModel):
    request_id: str | None = Field(default=None, max_length=200)
    values: list[float] = Field(min_length=3, max_length=3)


class ScoreOut(BaseModel):
    score: float
    model_version: str


class EchoDomain(Domain):
    name = "echo"
    title = "Echo (test plugin)"

    def __init__(self) -> None:
        self._model: dict[str, Any] | None = None
        self._version: str | None = None

    def migrations_dir(self) -> Path:
        return PACKAGE / "migrations"

    def ensure_production_model(self) -> str:
        with session_scope() as session:
            current = production_version(session, "echo", "linear")
            if current is None:
                current = register(
                    session,
                    domain="echo",
                    name="linear",
                    version="1",
                    artifact_path=PACKAGE / "model.json",
                    metrics={"accuracy": 1.0},
                    card=ModelCard(name="linear", intended_use="tests only"),
                    stage="production",
                )
            return current.version

    def setup(self) -> None:
        with session_scope() as session:
            version = production_version(session, "echo", "linear")
        assert version is not None
        self._model = json.loads(verified_artifact(version).read_text())
        self._version = version.version

    def status(self) -> DomainStatus:
        return DomainStatus(ready=self._model is not None, model_version=self._version)

    def score(self, values: list[float]) -> float:
        if self._model is None:
            raise RuntimeError("echo model not loaded")
        if not all(math.isfinite(v) for v in values):
            raise InvalidInput("values must be finite numbers", {"field": "values"})
        weights = self._model["weights"]
        return sum(w * v for w, v in zip(weights, values, strict=True)) + self._model["bias"]

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/score", response_model=ScoreOut)
        def score(
            body: ScoreIn,
            request: Request,
            principal: Annotated[Principal, Depends(require_scope("echo:score"))],
        ) -> Any:
            ctx = audit_context(request, principal, self.name)
            return audited(
                ctx,
                payload=body,
                idempotency_key=body.request_id,
                compute=lambda session: Outcome(
                    output={"score": self.score(body.values), "model_version": self._version},
                    model_version=self._version,
                    model="linear",
                ),
            )

        @router.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret internal detail")

        return router

    def render_page(self, viewer: Any) -> None:
        import streamlit as st

        st.header(self.title)
        st.write("The echo domain scores three numbers with a linear model.")

    def evaluate(self, data_file: Path, **options: Any) -> dict[str, float]:
        rows = json.loads(Path(data_file).read_text())
        self.setup()
        correct = sum((self.score(r["values"]) > 0) == bool(r["label"]) for r in rows)
        return {"accuracy": correct / len(rows), "n": float(len(rows))}

    def commands(self) -> dict[str, Any]:
        def evaluate(
            data: Annotated[Path, typer.Option("--data", help="JSON list of {values, label}")],
            as_json: Annotated[bool, typer.Option("--json")] = False,
        ) -> None:
            metrics = self.evaluate(data)
            print(json.dumps(metrics) if as_json else metrics)

        return {"evaluate": evaluate}
