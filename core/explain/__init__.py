"""Per-prediction explanations (Grad-CAM for image models)."""

from verticals.core.explain.gradcam import grad_cam, last_conv_layer, scale_to_peak

__all__ = ["grad_cam", "last_conv_layer", "scale_to_peak"]
