"""Evaluate a classifier on a MedMNIST-layout ``.npz`` or a labelled folder of image files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from verticals.core.errors import InvalidInput
from verticals.domains.medical.model.data import ImageSet, load_npz_split
from verticals.domains.medical.model.inference import Classifier
from verticals.domains.medical.model.metrics import accuracy, roc_auc
from verticals.domains.medical.model.preprocess import preprocess
from verticals.domains.medical.model.tasks import TaskSpec, get_task

LABELS_FILE = "labels.csv"


def _load_image(path: Path) -> np.ndarray:
    """``[H, W]`` float32 in [0, 1]: through the imaging loader when present, else Pillow."""
    try:
        from verticals.domains.medical.imaging import load_image_file
    except ImportError:
        load_image_file = None
    if load_image_file is not None:
        return np.asarray(load_image_file(path), dtype=np.float32)
    if path.suffix.lower() == ".dcm":
        raise InvalidInput("DICOM evaluation needs verticals.domains.medical.imaging")
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return arr


def _parse_label(raw: str, task: TaskSpec) -> int:
    value = raw.strip()
    if value in task.labels:
        return task.labels.index(value)
    try:
        number = int(float(value))
    except ValueError:
        raise InvalidInput(f"label {raw!r} is neither an index nor one of {task.labels}") from None
    if not 0 <= number < len(task.labels):
        raise InvalidInput(f"label {number} out of range for {task.labels}")
    return number


def load_folder(folder: Path, task: TaskSpec, size: int) -> ImageSet:
    """A folder with ``labels.csv`` (columns ``file,label``; label = index or name)."""
    labels_path = folder / LABELS_FILE
    if not labels_path.is_file():
        raise InvalidInput(f"{folder} has no {LABELS_FILE} (columns: file,label)")
    images, labels = [], []
    with open(labels_path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"file", "label"} <= set(reader.fieldnames):
            raise InvalidInput(f"{LABELS_FILE} needs the columns file,label")
        for row in reader:
            path = (folder / row["file"]).resolve()
            if folder.resolve() not in path.parents or not path.is_file():
                raise InvalidInput(f"{row['file']!r} is not a file inside {folder}")
            image = _load_image(path)
            images.append(preprocess(image, size))
            labels.append(_parse_label(row["label"], task))
    if not images:
        raise InvalidInput(f"{LABELS_FILE} lists no files")
    return ImageSet(np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64))


def load_eval_data(task: TaskSpec, data_file: Path, split: str, size: int) -> ImageSet:
    data_file = Path(data_file)
    if data_file.is_dir():
        return load_folder(data_file, task, size)
    if data_file.suffix == ".npz" and data_file.is_file():
        return load_npz_split(data_file, split)
    raise InvalidInput(f"{data_file} is neither a .npz file nor a folder with {LABELS_FILE}")


def score_classifier(classifier: Classifier, data: ImageSet) -> dict[str, float]:
    spec = classifier.spec
    if data.labels.min() < 0 or data.labels.max() >= len(spec.labels):
        raise InvalidInput(f"labels must be in 0..{len(spec.labels) - 1}")
    targets = (data.labels == spec.positive_index).astype(np.int64)
    probs = classifier.predict(data.images)
    auc = roc_auc(targets, probs)
    if np.isnan(auc):
        raise InvalidInput("ROC AUC needs both classes in the evaluation data")
    return {
        "roc_auc": auc,
        "accuracy": accuracy(targets, probs, classifier.threshold),
        "n": int(len(targets)),
    }


def evaluate_task(
    task: str, data_file: Path, split: str = "val", *, version: str | None = None
) -> dict[str, float]:
    """``{"roc_auc", "accuracy", "n"}`` of the production model (or ``version``) on ``data_file``.

    Accuracy uses the version's decision threshold. For the folder form ``split`` is ignored.
    """
    from verticals.domains.medical.model.production import load_classifier

    spec = get_task(task)
    classifier = load_classifier(spec.name, version)
    data = load_eval_data(spec, Path(data_file), split, classifier.input_size)
    return score_classifier(classifier, data)
