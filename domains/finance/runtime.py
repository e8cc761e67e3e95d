"""What serving holds once ``setup()`` ran: the scoring service and its micro-batcher."""

from __future__ import annotations

from dataclasses import dataclass

from verticals.core.errors import VerticalsError
from verticals.core.serving.batching import MicroBatcher
from verticals.domains.finance.model.fraud_model import FraudModel
from verticals.domains.finance.schemas import ScoreOut
from verticals.domains.finance.scoring import ScoreRequest, ScoringService
from verticals.domains.finance.settings import ServingConfig, decision_config, serving_config


@dataclass
class Runtime:
    service: ScoringService
    batcher: MicroBatcher[ScoreRequest, ScoreOut | VerticalsError]
    serving: ServingConfig

    @classmethod
    def start(cls, model: FraudModel, serving: ServingConfig | None = None) -> Runtime:
        serving = serving or serving_config()
        svc = ScoringService(model, decision_config(), serving)
        batcher: MicroBatcher[ScoreRequest, ScoreOut | VerticalsError] = MicroBatcher.from_settings(
            svc.score_many, serving.batching, name="finance/score"
        )
        batcher.start()
        return cls(service=svc, batcher=batcher, serving=serving)

    def close(self) -> None:
        self.batcher.close()
