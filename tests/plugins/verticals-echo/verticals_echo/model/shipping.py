"""The registry steps: register the shipped model once, register trained ones, load the
production model through the verifying loader (its sha256 checked on every load)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session
from verticals.core.config import get_settings as core_settings
from verticals.core.errors import ModelUnavailable
from verticals.core.registry import (
    ModelCard,
    ModelVersion,
    TensorSpec,
    production_version,
    read_verified,
)
from verticals.core.registry import shipping as core_shipping
from verticals.core.registry.gate import PromotionGate
from verticals.core.registry.shipping import Promotion, register_and_promote

from verticals_echo import NAME
from verticals_echo.model.inference import LinearModel

MODEL_NAME = "linear"
SHIPPED = Path(__file__).parent / "linear.json"
SHIPPED_VERSION = "1"
SHIPPED_SHA256 = "bfa77508ba990b8d091ad2032bf11e16c69a1a1676a2985a0c7c2b1b8aa2a549"  # linear.json
SHIPPED_METRICS = {"val_accuracy": 1.0}  # on the validation rows of sample.json
PROMOTION_METRIC = "val_accuracy"


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
    """The production version, registering the shipped model if it is new here (core's
    ensure_shipped: the checked bytes, registered once, safe when replicas start together)."""
    return core_shipping.ensure_shipped(
        domain=NAME,
        name=MODEL_NAME,
        card=card(SHIPPED_METRICS).model_copy(update={"version": SHIPPED_VERSION}),
        sha256=SHIPPED_SHA256,
        payload=lambda: read_verified(SHIPPED, SHIPPED_SHA256, what="the shipped model"),
        filename=SHIPPED.name,
        extra={},
    ).version


def register_trained(
    session: Session, model: LinearModel, version: str, metrics: dict[str, float], promote: bool
) -> Promotion:
    """Write the trained model to the home folder's artifacts, register it (sha256 computed by
    the registry) and, when ``promote`` (it passed the domain's bar), promote it if it is at
    least as good as production (core's promotion gate)."""
    folder = core_settings().artifacts_dir / NAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{MODEL_NAME}-{version}.json"
    path.write_bytes(model.to_bytes())
    return register_and_promote(
        session,
        domain=NAME,
        name=MODEL_NAME,
        artifact_path=path,
        card=card(metrics).model_copy(update={"version": version}),
        metric=PROMOTION_METRIC,
        gate=PromotionGate(f"{NAME}/{MODEL_NAME}"),
        promote_if_better=promote,
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
