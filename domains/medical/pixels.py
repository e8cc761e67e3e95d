"""From a decoded DICOM frame to what the model and the screen see, in the order of the
standard's grayscale pipeline: modality LUT or rescale, VOI window or LUT (else the frame's own
range), MONOCHROME1 inverted, colour to luma (ITU-R BT.601). Decoder failures become 413/415/422
with fixed phrases: decoders' own messages can quote header values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from verticals.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@dataclass
class Window:
    """A VOI window in modality units (what the dashboard's window/level controls start at)."""

    center: float
    width: float


def header_flag(ds: object, keyword: str) -> str:
    value = getattr(ds, keyword, "")
    return str(value).strip().upper() if value is not None else ""


GPL_DECODER_HINT = (
    "12-bit JPEG Extended needs pylibjpeg-libjpeg (GPLv3), not installed by default: "
    "pip install 'verticals[dicom-gpl]' where that licence is acceptable"
)


def decode_frame(ds: object, index: int | None) -> np.ndarray:
    from pydicom.pixels import pixel_array

    try:
        return np.asarray(pixel_array(ds, index=index))
    except MemoryError:
        raise PayloadTooLarge("the image is too large to decode in memory") from None
    # pydicom's and the plugins' messages can quote header values (an unknown photometric
    # interpretation, for one), so what reaches the client is a fixed phrase and the type only
    except NotImplementedError as exc:
        raise UnsupportedMediaType(_undecodable(exc, "no decoder handles it")) from None
    except RuntimeError as exc:
        lowered = str(exc).lower()
        if any(s in lowered for s in ("no pixel data decoders", "missing required", "not support")):
            extended = "jpeg extended" in lowered
            why = (
                "12-bit JPEG Extended needs a GPL decoder"
                if extended
                else "no installed decoder supports it"
            )
            raise UnsupportedMediaType(
                _undecodable(exc, why), {"hint": GPL_DECODER_HINT} if extended else None
            ) from None
        raise InvalidInput(_undecodable(exc, "the decoder failed")) from None
    except Exception as exc:  # noqa: BLE001 - truncated or inconsistent pixel data
        if "does not support" in str(exc):
            # e.g. 12-bit JPEG Extended (process 4): only GPL libjpeg decodes it; not installed
            raise UnsupportedMediaType(
                _undecodable(exc, "no installed decoder supports it")
            ) from None
        raise InvalidInput(
            _undecodable(exc, "truncated, or inconsistent with the header")
        ) from None


def _undecodable(exc: BaseException, why: str) -> str:
    return f"the pixel data cannot be decoded: {why} ({type(exc).__name__})"


def grayscale_pipeline(frame: np.ndarray, ds: object) -> tuple[np.ndarray, np.ndarray, Window]:
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    photometric = header_flag(ds, "PhotometricInterpretation")
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frame.ndim == 3 and frame.shape[-1] in (3, 4) and samples > 1:
        color = True
    elif photometric == "PALETTE COLOR":
        try:
            frame = apply_color_lut(frame, ds)
        except Exception as exc:  # noqa: BLE001
            raise InvalidInput(
                f"the palette colour LUT cannot be applied ({type(exc).__name__})"
            ) from None
        color = True
    else:
        color = False
    if frame.ndim != (3 if color else 2):
        raise InvalidInput(f"decoded pixel data has an unexpected shape {tuple(frame.shape)}")
    if not np.issubdtype(frame.dtype, np.number):
        raise InvalidInput("decoded pixel data is not numeric")

    if color:
        rgb = frame[..., :3].astype(np.float64)
        top = float(2 ** int(getattr(ds, "BitsStored", 8) or 8) - 1)
        if photometric == "PALETTE COLOR":
            top = 65535.0 if rgb.max() > 255 else 255.0
        luma = rgb @ _LUMA
        values = luma.astype(np.float32)
        pixels = np.clip(luma / max(top, 1.0), 0.0, 1.0).astype(np.float32)
        return _finite(pixels), _finite(values), Window(center=top / 2.0, width=top + 1.0)

    raw = frame.astype(np.float64)
    if not np.all(np.isfinite(raw)):
        raise InvalidInput("pixel data contains NaN or infinite values")
    try:
        values = np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise InvalidInput(
            f"the modality LUT / rescale cannot be applied ({type(exc).__name__})"
        ) from None
    if not np.all(np.isfinite(values)):
        raise InvalidInput("rescaled pixel values are not finite (bad rescale slope/intercept)")

    window = _first_window(ds)
    if window is not None:
        pixels = _apply_window(values, window, header_flag(ds, "VOILUTFunction") or "LINEAR")
    else:
        pixels = _apply_voi_lut_sequence(values, frame, ds)
        if pixels is None and _is_plain_8bit(ds):
            # an 8-bit image without VOI (a scanned film, a secondary capture of a JPEG, the
            # MedMNIST training pictures) is already for display: stretching it to its own
            # min..max would show the network a contrast it never saw in training
            window = Window(center=127.5, width=256.0)
            pixels = values / 255.0
        elif pixels is None:
            low, high = float(values.min()), float(values.max())
            window = Window(center=(low + high) / 2.0, width=max(high - low, 1.0))
            pixels = (values - low) / (high - low) if high > low else np.zeros_like(values)
        else:
            low, high = float(values.min()), float(values.max())
            window = Window(center=(low + high) / 2.0, width=max(high - low, 1.0))
    if photometric == "MONOCHROME1":
        pixels = 1.0 - pixels
    return (
        _finite(np.clip(pixels, 0.0, 1.0).astype(np.float32)),
        values.astype(np.float32),
        window,
    )


def _is_plain_8bit(ds: object) -> bool:
    """Unsigned pixels of at most 8 stored bits with no rescale and no modality LUT (which
    can map them to 16-bit values): values are display levels."""
    if getattr(ds, "ModalityLUTSequence", None):
        return False
    try:
        bits = int(getattr(ds, "BitsStored", 0) or 0)
        signed = int(getattr(ds, "PixelRepresentation", 0) or 0)
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    except (TypeError, ValueError):
        return False
    return 0 < bits <= 8 and signed == 0 and slope == 1.0 and intercept == 0.0


def _finite(array: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise InvalidInput("pixel data contains NaN or infinite values")
    return array


def _first_window(ds: object) -> Window | None:
    center = getattr(ds, "WindowCenter", None)
    width = getattr(ds, "WindowWidth", None)
    if center is None or width is None:
        return None
    try:
        c = float(center[0] if _is_multi(center) else center)
        w = float(width[0] if _is_multi(width) else width)
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
        return None
    return Window(center=c, width=w)


def _is_multi(value: object) -> bool:
    return not isinstance(value, str | bytes) and hasattr(value, "__len__")


def apply_window(values: np.ndarray, window: Window, function: str = "LINEAR") -> np.ndarray:
    """Window modality values to [0, 1] (DICOM PS3.3 C.11.2.1.2 formulas, output 0..1)."""
    return np.clip(_apply_window(values.astype(np.float64), window, function), 0, 1).astype(
        np.float32
    )


def _apply_window(values: np.ndarray, window: Window, function: str) -> np.ndarray:
    c, w = window.center, window.width
    function = function.upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(np.clip(-4.0 * (values - c) / w, -500, 500)))
    if function == "LINEAR_EXACT":
        return (values - c) / w + 0.5
    if w <= 1:
        return (values >= c).astype(np.float64)
    return (values - (c - 0.5)) / (w - 1.0) + 0.5


def _apply_voi_lut_sequence(values: np.ndarray, frame: np.ndarray, ds: object) -> np.ndarray | None:
    sequence = getattr(ds, "VOILUTSequence", None)
    if not sequence:
        return None
    from pydicom.pixels import apply_voi_lut

    try:
        item = sequence[0]
        bits = int(item.LUTDescriptor[2])
        source = values.astype(np.int64) if np.all(values == np.round(values)) else values
        out = np.asarray(apply_voi_lut(source, ds, prefer_lut=True), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a broken VOI LUT falls back to min..max
        return None
    top = float(2**bits - 1) if 0 < bits <= 16 else float(out.max() or 1.0)
    return out / top
