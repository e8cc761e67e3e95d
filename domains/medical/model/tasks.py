"""The medical classification tasks: labels, input size, which uploads they fit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TaskSpec(BaseModel):
    """One binary imaging task. The model outputs the probability of ``positive_label``."""

    model_config = ConfigDict(frozen=True)

    name: str
    labels: list[str] = Field(description="class names in dataset label order (index = label)")
    positive_label: str
    input_size: int = Field(gt=0, description="the model's square input side in pixels")
    modalities: frozenset[str] = Field(description="DICOM Modality values this task fits")
    body_parts: frozenset[str] = Field(description="DICOM BodyPartExamined values it fits")
    photometrics: frozenset[str] = Field(
        frozenset(),
        description="DICOM PhotometricInterpretation values it fits (empty: not checked)",
    )
    description: str = ""
    dataset_file: str = Field(description="MedMNIST file name under the data folder")

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if self.positive_label not in self.labels:
            raise ValueError(f"positive_label {self.positive_label!r} not in labels {self.labels}")
        return self

    def preprocess(self, image: Any, size: int | None = None) -> Any:
        """``[H, W]`` or ``[1, H, W]`` in [0, 1] → ``[1, S, S]`` float32: the task's one
        preprocessing chain (training, evaluation and serving all use it); ``size`` defaults to
        the task's input size (a model version may carry its own)."""
        from verticals.domains.medical.model.preprocess import preprocess

        return preprocess(image, size or self.input_size)

    @property
    def positive_index(self) -> int:
        """The dataset label value of the positive class."""
        return self.labels.index(self.positive_label)


TASKS: dict[str, TaskSpec] = {
    "pneumonia": TaskSpec(
        name="pneumonia",
        labels=["normal", "pneumonia"],
        positive_label="pneumonia",
        input_size=28,
        modalities=frozenset({"CR", "DX"}),
        body_parts=frozenset({"CHEST"}),
        photometrics=frozenset({"MONOCHROME1", "MONOCHROME2"}),
        description="Pneumonia on a paediatric frontal chest X-ray (PneumoniaMNIST).",
        dataset_file="pneumoniamnist.npz",
    ),
    "breast": TaskSpec(
        name="breast",
        labels=["malignant", "normal_or_benign"],
        positive_label="malignant",
        input_size=28,
        modalities=frozenset({"US"}),
        body_parts=frozenset({"BREAST"}),
        # ultrasound is often stored in colour (RGB/YBR) although the picture is grey
        photometrics=frozenset(
            {"MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"}
        ),
        description="Malignant versus normal/benign breast ultrasound (BreastMNIST).",
        dataset_file="breastmnist.npz",
    ),
}


def get_task(name: str) -> TaskSpec:
    from verticals.core.errors import NotFound

    try:
        return TASKS[name]
    except KeyError:
        raise NotFound(f"unknown medical task {name!r}", {"known": sorted(TASKS)}) from None
