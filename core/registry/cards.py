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


def format_metric(value: float) -> str:
    """A metric as people read it: counts without decimals, the rest to 4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def metrics_table(metrics: dict[str, float]) -> list[dict[str, str]]:
    """Rows of (metric, value) for display, values formatted by :func:`format_metric`."""
    return [{"metric": name, "value": format_metric(v)} for name, v in metrics.items()]
