"""The medical domain's own settings (env prefix ``VERTICALS_MEDICAL_``), read on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from verticals.core.config import get_settings


class MedicalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_MEDICAL_", extra="ignore")

    max_upload_bytes: int = Field(64 * 1024 * 1024, gt=0, description="largest accepted upload")
    max_pixels: int = Field(64 * 1024 * 1024, gt=0, description="largest decoded frame (rows*cols)")
    max_zip_members: int = Field(2000, gt=0)
    max_zip_uncompressed_bytes: int = Field(1024 * 1024 * 1024, gt=0)
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
    batch_max_size: int = 32
    batch_max_wait_ms: float = 5.0
    batch_max_queue: int = 256
    batch_timeout_s: float = 10.0
    batch_workers: int = Field(1, ge=1, description="batches run side by side per task")

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
