"""Public API schemas (what crosses the HTTP boundary). Models read from table rows validate
them directly (``from_attributes``): a row's ``id`` is a study's ``study_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field

StudyStatus = Literal["predicted", "reviewed"]
API_PREFIX = "/v1/medical"


def _study_id() -> str:
    """The ``study_id`` field, read as ``id`` from a table row."""
    return Field(validation_alias=AliasChoices("study_id", "id"))


class StudyLinks(BaseModel):
    self: str
    heatmap: str
    fhir: str
    sr: str
    review: str


def study_links(study_id: str) -> StudyLinks:
    base = f"{API_PREFIX}/studies/{study_id}"
    return StudyLinks(
        self=base,
        heatmap=f"{base}/heatmap.png",
        fhir=f"{base}/report.fhir.json",
        sr=f"{base}/sr.dcm",
        review=f"{base}/review",
    )


class Finding(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)


class StudyCreated(BaseModel):
    """The response to an upload: the decision, how it was reached, and the probabilities."""

    model_config = ConfigDict(from_attributes=True)

    study_id: str = _study_id()
    task: str
    finding: str = Field(
        description="the decision to act on: the task label at the model's threshold, or "
        "'indeterminate' when the input is outside the model's scope (see warnings)"
    )
    predicted_label: str = Field(
        description="the model's label at its threshold, reported even when the finding is "
        "indeterminate; not a decision on its own"
    )
    positive_label: str
    threshold: float = Field(
        description="probability of positive_label at or above which it is predicted"
    )
    in_scope: bool = Field(description="the input fits the task and its training distribution")
    ood_score: float | None = Field(
        None,
        description="distance from the training images / the cut calibrated on validation "
        "images (above 1: out of distribution); null when the model has no profile",
    )
    warnings: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(description="probability of each label")
    model_version: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def heatmap_url(self) -> str:
        return study_links(self.study_id).heatmap


class ReviewIn(BaseModel):
    label: str = Field(min_length=1, max_length=120, description="one of the task's labels")
    comment: str | None = Field(
        None, max_length=2000, description="free text; must not contain patient identifiers"
    )


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    study_id: str
    label: str
    agrees: bool = Field(description="whether the clinician's label matches the model's")
    comment: str | None
    model_version: str
    created_at: datetime


class StudyOut(StudyCreated):
    """A study as stored: the prediction plus its context and the latest review."""

    status: StudyStatus
    created_at: datetime
    source_kind: str
    modality: str | None
    body_part: str | None
    rows: int
    columns: int
    window_center: float
    window_width: float
    notes: list[str]
    review: ReviewOut | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def links(self) -> StudyLinks:
        return study_links(self.study_id)


class StudySummary(BaseModel):
    """One worklist row."""

    model_config = ConfigDict(from_attributes=True)

    study_id: str = _study_id()
    created_at: datetime
    task: str
    status: StudyStatus
    finding: str
    predicted_label: str
    probability: float
    model_version: str
    modality: str | None


class StudyList(BaseModel):
    studies: list[StudySummary]
