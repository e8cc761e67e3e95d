"""The echo domain's use cases: score, list and add notes, train, evaluate.

No HTTP and no Streamlit here: ``api.py`` and ``page.py`` both call this layer, so a use case
behaves the same from the API, the dashboard and the CLI. Every prediction the API serves is
recorded (``audited``); every action a signed-in user takes on the page is logged under that
user (``record_action``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from verticals.core.audit import AuditContext, Outcome, audited, record_action
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import ModelUnavailable

from verticals_echo import NAME
from verticals_echo.model import data, evaluate, shipping, train
from verticals_echo.model.inference import LinearModel
from verticals_echo.schemas import NoteOut, ScoreIn
from verticals_echo.settings import get_settings
from verticals_echo.tables import EchoNote


class EchoService:
    def __init__(self) -> None:
        self._model: LinearModel | None = None
        self._version: str | None = None

    # -- the production model ---------------------------------------------------------------
    def load(self) -> None:
        """Load the production model (verified against its registered sha256)."""
        with session_scope() as session:
            model, version = shipping.load_production(session)
        self._model, self._version = model, version.version

    @property
    def model_version(self) -> str | None:
        return self._version

    def _loaded(self) -> tuple[LinearModel, str]:
        if self._model is None or self._version is None:
            self.load()
        if self._model is None or self._version is None:
            raise ModelUnavailable(f"the {NAME} model is not loaded")
        return self._model, self._version

    # -- scoring ----------------------------------------------------------------------------
    def score(self, values: list[float]) -> tuple[float, str]:
        """(score, model version); InvalidInput for anything but 3 finite numbers."""
        model, version = self._loaded()
        return model.score(values), version

    def score_request(self, ctx: AuditContext, body: ScoreIn) -> Any:
        """Score for an API client: recorded with the request, replayed on a retried id."""

        def compute(_session: Any) -> Outcome:
            score, version = self.score(body.values)
            return Outcome(
                output={"score": score, "model_version": version},
                model_version=version,
                model=shipping.MODEL_NAME,
            )

        return audited(ctx, payload=body, idempotency_key=body.request_id, compute=compute)

    def score_as(self, viewer: Principal, values: list[float]) -> float:
        """Score for a signed-in user of the dashboard; the action is logged under them."""
        score, version = self.score(values)
        with session_scope() as session:
            record_action(
                session,
                viewer,
                domain=NAME,
                action="score",
                target=f"{shipping.MODEL_NAME}:{version}",
                detail={"score": score},
            )
        return score

    def score_file(self, data_file: Path) -> list[float]:
        rows = data.load_rows(data_file, max_rows=get_settings().max_score_rows)
        return [self.score(row.values)[0] for row in rows]

    # -- notes ------------------------------------------------------------------------------
    def add_note(self, actor: Principal, text: str) -> NoteOut:
        with session_scope() as session:
            note = EchoNote(tenant=actor.tenant, author=actor.name, text=text)
            session.add(note)
            session.flush()
            record_action(session, actor, domain=NAME, action="note.add", target=str(note.id))
            return NoteOut.model_validate(note, from_attributes=True)

    def list_notes(self, viewer: Principal) -> list[NoteOut]:
        """The latest notes of the viewer's tenant, newest first."""
        query = (
            select(EchoNote)
            .where(EchoNote.tenant == viewer.tenant)
            .order_by(EchoNote.id.desc())
            .limit(get_settings().notes_page_size)
        )
        with session_scope() as session:
            return [NoteOut.model_validate(n, from_attributes=True) for n in session.scalars(query)]

    # -- training and evaluation ------------------------------------------------------------
    def evaluate(self, data_file: Path) -> dict[str, float]:
        model, _ = self._loaded()
        return evaluate.metrics(model, data.load_rows(data_file))

    def train(self, data_file: Path, version: str) -> tuple[str, dict[str, float], bool]:
        """Fit on ``data_file`` less a held-out validation split, register the model, promote
        it when its validation accuracy reaches the setting and is at least production's.
        (version, metrics, promoted)."""
        fitted_on, held_out = data.split(data.load_rows(data_file))
        if not held_out:
            raise ValueError("the data file is too small to hold out validation rows")
        model = train.fit(fitted_on)
        metrics = {f"val_{k}": v for k, v in evaluate.metrics(model, held_out).items()}
        passes = metrics["val_accuracy"] >= get_settings().min_val_accuracy
        with session_scope() as session:
            promoted = shipping.register_trained(session, model, version, metrics, passes).promoted
        if promoted:
            self._model, self._version = model, version
        return version, metrics, promoted
