"""The medical domain's own settings (env prefix ``VERTICALS_MEDICAL_``), read on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from verticals.core.config import get_settings
from verticals.core.serving.batching import BatchingSettings


class MedicalBatching(BatchingSettings):
    """Per task: up to 32 images wait up to 5 ms for each other."""

    max_wait_ms: float = Field(5.0, ge=0)


class MedicalSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VERTICALS_MEDICAL_", env_nested_delimiter="__", extra="ignore"
    )

    max_upload_bytes: int = Field(64 * 1024 * 1024, gt=0, description="largest accepted upload")
    max_pixels: int = Field(
        32 * 1024 * 1024,
        gt=0,
        description="largest decoded frame, rows*cols, read from the header before decoding",
    )
    max_decoded_bytes: int = Field(
        640 * 1024 * 1024,
        gt=0,
        description="bytes one upload may materialise beyond its own: bytes inflated (zip "
        "members, deflated DICOM) plus the estimated working memory of decoding its one frame "
        "(about 44 bytes per pixel for 16-bit grayscale: 640 MiB fits 15 megapixels)",
    )
    max_header_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="largest DICOM header (everything before the pixel data), read from a plain "
        "file, a zip member or a deflated file",
    )
    max_header_elements: int = Field(
        100_000,
        gt=0,
        description="most elements one DICOM data set may hold (parsing costs a few hundred "
        "bytes of memory per element, whatever its size)",
    )
    max_zip_members: int = Field(2000, gt=0)
    max_zip_uncompressed_bytes: int = Field(
        1024 * 1024 * 1024,
        gt=0,
        description="sum of the member sizes a zip declares (only headers and the one analysed "
        "member are inflated, each under a running limit)",
    )
    decode_concurrency: int = Field(
        2,
        ge=1,
        description="decodes running at once in this process; memory bound: about "
        "decode_concurrency * max_decoded_bytes",
    )
    decode_wait_s: float = Field(
        2.0, ge=0, description="how long an upload waits for a decode slot before a 503"
    )
    reject_burned_in_annotation: bool = Field(
        True,
        description="refuse uploaded DICOM whose pixels may show identifiers (a 422): "
        "BurnedInAnnotation=YES, or a secondary capture (SC SOP class, ConversionType, a "
        "screen-capture ImageType) not flagged BurnedInAnnotation=NO. Pixels are not cleaned, so "
        "the basic profile could not be honoured; a deployment that cleans pixels upstream opts "
        "in with VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION=false (see deid.py)",
    )
    display_max_side: int = Field(512, gt=16, description="stored display image, longest side")
    runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx: ONNX Runtime (TensorRT/CUDA/CPU); torch: eager, for debugging"
    )
    batching: MedicalBatching = Field(default_factory=lambda: MedicalBatching())

    @property
    def studies_dir(self) -> Path:
        return get_settings().home / "medical" / "studies"

    @property
    def secret_path(self) -> Path:
        return get_settings().home / "medical" / "deid.key"


@lru_cache(maxsize=1)
def get_medical_settings() -> MedicalSettings:
    return MedicalSettings()


def reset_medical_settings() -> None:
    get_medical_settings.cache_clear()
