"""What is kept of an upload, written once when a study is created: the de-identified DICOM
Part 10 file (the original's dataset de-identified, or a Secondary Capture built around a PNG or
JPEG), the modality values for display (bounded in size), the Grad-CAM and the heatmap PNG."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from verticals.core.errors import InvalidInput, VerticalsError
from verticals.domains.medical.deid import DUMMY_ID, DUMMY_NAME, UIDMapper, deidentify, load_key
from verticals.domains.medical.imaging import DecodedImage
from verticals.domains.medical.overlay import heatmap_png
from verticals.domains.medical.settings import get_medical_settings
from verticals.domains.medical.storage import StudyFiles, save_array


def uid_mapper() -> UIDMapper:
    return UIDMapper(load_key(get_medical_settings().secret_path))


def deidentified_part10(decoded: DecodedImage) -> tuple[bytes, dict[str, Any]]:
    """Part 10 bytes of the de-identified image, and the identifiers the study row keeps."""
    mapper = uid_mapper()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if decoded.dataset is not None:
                ds = deidentify(decoded.dataset, mapper)
                decoded.dataset = None  # the identified original is not kept around
            else:
                ds = secondary_capture(decoded.pixels, mapper)
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
        except VerticalsError:
            raise
        except Exception as exc:  # noqa: BLE001 - odd headers pydicom cannot re-encode
            raise InvalidInput(
                f"the DICOM file cannot be de-identified and stored ({type(exc).__name__})"
            ) from None
    identity = {
        "modality": str(getattr(ds, "Modality", "") or "")[:16] or None,
        "body_part": str(getattr(ds, "BodyPartExamined", "") or "")[:64] or None,
        "study_uid": str(ds.StudyInstanceUID),
        "series_uid": str(ds.SeriesInstanceUID),
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "sop_class_uid": str(ds.SOPClassUID),
    }
    return buffer.getvalue(), identity


def write_study_files(
    files: StudyFiles, image_bytes: bytes, decoded: DecodedImage, cam: np.ndarray
) -> None:
    files.root.mkdir(parents=True, exist_ok=False)
    files.image.write_bytes(image_bytes)
    values = decoded.modality_values
    side = get_medical_settings().display_max_side
    scale = min(1.0, side / max(values.shape))
    if scale < 1.0:
        shape = (max(1, round(values.shape[0] * scale)), max(1, round(values.shape[1] * scale)))
        values = _resize_values(values, shape)
    save_array(files.display, values)
    save_array(files.cam, cam)
    files.heatmap.write_bytes(heatmap_png(decoded.pixels, cam))


def _resize_values(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BOX), dtype=np.float32)


def secondary_capture(pixels: np.ndarray, mapper: UIDMapper):  # noqa: ANN201 - pydicom Dataset
    """A DICOM Secondary Capture holding a PNG/JPEG upload (8-bit), with no patient data."""
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian

    array = (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)
    image = hd.sc.SCImage(
        pixel_array=array,
        photometric_interpretation="MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        study_instance_uid=mapper.fresh(),
        series_instance_uid=mapper.fresh(),
        series_number=1,
        sop_instance_uid=mapper.fresh(),
        instance_number=1,
        manufacturer="verticals",
        patient_id=DUMMY_ID,
        patient_name=DUMMY_NAME,
        patient_orientation=("L", "F"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    image.PatientIdentityRemoved = "YES"
    return image
