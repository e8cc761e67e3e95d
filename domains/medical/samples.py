"""Build the shipped demo samples: DICOM files made from MedMNIST *training* images.

Run once by a maintainer (``scripts/make_medical_demo_samples.py <medmnist_dir> <out>``);
the product only reads the files it wrote (``domains/medical/demo/``). Headers are synthetic:
no real patient, no dates, fixed demo identifiers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

# task -> (MedMNIST file, labels in index order, Modality, BodyPartExamined)
SOURCES = {
    "pneumonia": ("pneumoniamnist.npz", ["normal", "pneumonia"], "CR", "CHEST"),
    "breast": ("breastmnist.npz", ["malignant", "normal_or_benign"], "US", "BREAST"),
}
PER_LABEL = 2
UID_PREFIX = "1.2.826.0.1.3680043.10.1414."  # pydicom's demo root + a fixed branch


def sample_dataset(
    image: np.ndarray,
    *,
    task: str,
    label: str,
    index: int,
    modality: str,
    body_part: str,
    number: int,
) -> Dataset:
    """One 8-bit MONOCHROME2 Secondary Capture image with a synthetic, PHI-free header."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    seed = f"{task}-{index}"
    ds.StudyInstanceUID = generate_uid(UID_PREFIX, [seed, "study"])
    ds.SeriesInstanceUID = generate_uid(UID_PREFIX, [seed, "series"])
    ds.SOPInstanceUID = generate_uid(UID_PREFIX, [seed, "instance"])
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = f"DEMO^{task.upper()}{number:02d}"
    ds.PatientID = f"DEMO-{task.upper()}-{number:02d}"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "DEMO"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = modality
    ds.ConversionType = "WSD"
    ds.BodyPartExamined = body_part
    ds.Manufacturer = "verticals demo"
    ds.SeriesDescription = f"MedMNIST v2 {task} train #{index} ({label}), CC BY 4.0"
    ds.PatientIdentityRemoved = "YES"
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = image.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return ds


def write_samples(medmnist_dir: Path, out_dir: Path) -> list[Path]:
    written = []
    for task, (file_name, labels, modality, body_part) in SOURCES.items():
        folder = out_dir / task
        folder.mkdir(parents=True, exist_ok=True)
        with np.load(medmnist_dir / file_name, allow_pickle=False) as npz:
            images, targets = npz["train_images"], npz["train_labels"].reshape(-1)
        rows = []
        number = 1
        for value, label in enumerate(labels):
            for index in np.flatnonzero(targets == value)[:PER_LABEL]:
                ds = sample_dataset(
                    images[index],
                    task=task,
                    label=label,
                    index=int(index),
                    modality=modality,
                    body_part=body_part,
                    number=number,
                )
                path = folder / f"{task}_{label}_{int(index)}.dcm"
                ds.save_as(path, enforce_file_format=True)
                rows.append({"file": path.name, "label": label})
                written.append(path)
                number += 1
        with open(folder / "labels.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "label"])
            writer.writeheader()
            writer.writerows(rows)
    return written
