"""Model cards as data, after MONAI bundles' metadata.json."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TensorSpec(BaseModel):
    """One typed input or output of a model."""

    name: str
    dtype: str
    shape: list[int | str] = Field(description="dimensions; strings name dynamic axes")
    value_range: tuple[float, float] | None = None
    description: str = ""


class ModelCard(BaseModel):
    name: str
    version: str = ""
    task: str = ""
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    training_data: str = ""
    evaluation_data: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    reproduce_command: str = ""
    framework_versions: dict[str, str] = Field(default_factory=dict)
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)
    changelog: dict[str, str] = Field(default_factory=dict)
    license: str = ""
