"""Where a study's files live: ``<home>/medical/studies/<study_id>/``.

Every file is derived from the de-identified image: ``image.dcm`` (de-identified DICOM, or a
Secondary Capture built for PNG/JPEG), ``display.npy`` (modality values for window/level, at
most ``display_max_side`` pixels a side), ``cam.npy`` (Grad-CAM at the model's input size),
``heatmap.png`` (overlay) and, once asked for, ``sr.dcm``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from verticals.core.config import get_settings
from verticals.core.errors import NotFound
from verticals.domains.medical.settings import get_medical_settings


@dataclass(frozen=True)
class StudyFiles:
    root: Path

    @property
    def image(self) -> Path:
        return self.root / "image.dcm"

    @property
    def display(self) -> Path:
        return self.root / "display.npy"

    @property
    def cam(self) -> Path:
        return self.root / "cam.npy"

    @property
    def heatmap(self) -> Path:
        return self.root / "heatmap.png"

    @property
    def sr(self) -> Path:
        return self.root / "sr.dcm"

    def relative(self) -> str:
        return str(self.root.relative_to(get_settings().home))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def require(self, path: Path) -> Path:
        if not path.is_file():
            raise NotFound(f"{path.name} of this study is not stored")
        return path


def files_for(study_id: str) -> StudyFiles:
    return StudyFiles(get_medical_settings().studies_dir / study_id)


def files_from_row(storage_dir: str) -> StudyFiles:
    return StudyFiles(get_settings().home / storage_dir)


def save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)
