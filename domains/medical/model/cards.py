"""Model cards of medical classifiers (data, metrics, intended use, limits, input spec)."""

from __future__ import annotations

import platform

import monai
import torch
from verticals.core.registry import ModelCard, TensorSpec
from verticals.domains.medical.model.tasks import TaskSpec

INTENDED_USE = (
    "Research and demonstration decision support: ranks {what} for a clinician's review. "
    "Not a medical device; never the sole basis of a diagnosis."
)
LIMITS = (
    "Trained on 28x28 MedMNIST v2 images ({source}); low resolution loses fine findings. "
    "Not validated on other sites, scanners, populations or resolutions; {calibration} "
    "Non-square inputs are resized without keeping the aspect ratio."
)
UNCALIBRATED = "probabilities are not calibrated beyond the chosen decision threshold."
CV_EVALUATION = (
    "cv_*: stratified {k}-fold cross-validation over the MedMNIST train and val splits pooled "
    "(fixed split seed; each fold's model trained from scratch with this recipe on the other "
    "folds, nothing selected on its own fold), mean and sample sd over the folds; accuracy and "
    "NLL use calibration and threshold fitted on the other folds' predictions only. The "
    "MedMNIST test split was never used for any choice."
)
CV_CALIBRATION = (
    "probabilities are Platt-calibrated (scale {scale:.3f}, bias {bias:+.3f}, folded into the "
    "final layer) on the out-of-fold predictions, i.e. at the training class balance "
    "({prevalence:.0%} {positive}); read as a risk they assume that prevalence. The decision "
    "threshold ({threshold:.3f} on the calibrated output) maximises balanced accuracy "
    "(sensitivity + specificity) on those predictions, so accuracy holds when the share of "
    "positives changes (a new site, other patients), at the price of a little accuracy at "
    "the training balance. Calibration and threshold come from the k fold models and are "
    "applied to the final model trained on all of train and val."
)
SOURCES = {
    "pneumonia": "PneumoniaMNIST: paediatric chest X-rays of Kermany et al. 2018, CC BY 4.0",
    "breast": "BreastMNIST: breast ultrasound of Al-Dhabyani et al. 2020 (BUSI), CC BY 4.0",
}


def build_card(
    spec: TaskSpec,
    *,
    metrics: dict[str, float],
    reproduce_command: str,
    training_data: str,
    description: str,
    input_size: int | None = None,
    calibration: str = UNCALIBRATED,
    evaluation_data: str | None = None,
) -> ModelCard:
    size = input_size or spec.input_size
    return ModelCard(
        name=spec.name,
        task=f"binary classification: {spec.positive_label} vs the rest ({spec.description})",
        description=description,
        intended_use=INTENDED_USE.format(what=spec.description.lower().rstrip(".")),
        limitations=LIMITS.format(source=SOURCES.get(spec.name, spec.name),
                                  calibration=calibration),
        training_data=training_data,
        evaluation_data=evaluation_data or (
            "val_*: a stratified validation split carved from the train split (selection and "
            "threshold); official_val_*: the official MedMNIST val split, never used in training "
            "or selection"
        ),
        metrics=metrics,
        reproduce_command=reproduce_command,
        framework_versions={
            "torch": torch.__version__.split("+")[0],
            "monai": monai.__version__,
            "python": platform.python_version(),
        },
        inputs=[
            TensorSpec(
                name="image", dtype="float32", shape=["N", 1, "H", "W"], value_range=(0.0, 1.0),
                description=f"grayscale, 1 channel; any H and W, resized to {size}x{size} inside",
            )
        ],
        outputs=[
            TensorSpec(
                name="probability", dtype="float32", shape=["N"], value_range=(0.0, 1.0),
                description=f"probability of {spec.positive_label!r}; positive when >= the "
                "decision_threshold metric",
            )
        ],
        license="CC BY 4.0 (training data); model weights under the project licence",
    )
