"""The registry steps: register the shipped model once, register trained ones, load the
production model through the verifying loader (its sha256 checked on every load)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlalchemy.orm import Session
from verticals.core.config import get_settings as core_settings
from verticals.core.db import session_scope
from verticals.core.errors import ModelUnavailable
from verticals.core.registry import (
    ModelCard,
    ModelVersion,
    TensorSpec,
    get_version,
    list_versions,
    production_version,
    read_verified,
    register,
)

from verticals_echo import NAME
from verticals_echo.model.inference import LinearModel

MODEL_NAME = "linear"
SHIPPED = Path(__file__).parent / "linear.json"
SHIPPED_VERSION = "1"
SHIPPED_METRICS = {"accuracy": 1.0}  # on the validation rows of sample.json


def card(metrics: dict[str, float]) -> ModelCard:
    return ModelCard(
        name=MODEL_NAME,
        task="binary classification by a linear score",
        intended_use="an example to replace: shows every step a verticals model goes through",
        training_data="model/sample.json (rows not held out for validation)",
        evaluation_data="every 4th row of model/sample.json",
        metrics=metrics,
        reproduce_command=f"verticals train {NAME} --data <package>/model/sample.json",
        inputs=[TensorSpec(name="values", dtype="float64", shape=[3])],
        outputs=[TensorSpec(name="score", dtype="float64", shape=[1])],
    )


def ensure_shipped() -> str:
    """The production version, registering the shipped model when none is registered yet.
    Safe when two replicas start at once: the loser of the race reads the winner's row."""
    with session_scope() as session:
        current = production_version(session, NAME, MODEL_NAME)
        if current is not None:
            return current.version
        if list_versions(session, NAME, MODEL_NAME):  # an operator archived them: respect it
            raise ModelUnavailable(f"no production model for {NAME}/{MODEL_NAME}")
    try:
        with session_scope() as session:
            return register(
                session,
                domain=NAME,
                name=MODEL_NAME,
                version=SHIPPED_VERSION,
                artifact_path=SHIPPED,
                metrics=SHIPPED_METRICS,
                card=card(SHIPPED_METRICS),
                stage="production",
            ).version
    except DatabaseIntegrityError:
        with session_scope() as session:
            return get_version(session, NAME, MODEL_NAME, SHIPPED_VERSION).version


def register_trained(
    session: Session, model: LinearModel, version: str, metrics: dict[str, float], promote: bool
) -> ModelVersion:
    """Write the trained model to the home folder's artifacts and register it (sha256 computed
    by the registry)."""
    folder = core_settings().artifacts_dir / NAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{MODEL_NAME}-{version}.json"
    path.write_bytes(model.to_bytes())
    return register(
        session,
        domain=NAME,
        name=MODEL_NAME,
        version=version,
        artifact_path=path,
        metrics=metrics,
        card=card(metrics),
        stage="production" if promote else "staging",
    )


def load_production(session: Session) -> tuple[LinearModel, ModelVersion]:
    """The production model, from bytes whose sha256 matched the registry (IntegrityError if
    not: the model is then unavailable, never served)."""
    version = production_version(session, NAME, MODEL_NAME)
    if version is None:
        raise ModelUnavailable(f"no production model for {NAME}/{MODEL_NAME}")
    payload = read_verified(
        Path(version.artifact_path), version.sha256, what=f"artifact of {version.ref}"
    )
    return LinearModel.from_bytes(payload), version
