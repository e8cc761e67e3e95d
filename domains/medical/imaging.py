"""Decode an upload into one grayscale image in [0, 1].

Accepted: a DICOM file (any transfer syntax a decoder plugin handles), a zip holding a DICOM
series, PNG and JPEG. Decoders: pydicom's own (native, deflated, RLE), pylibjpeg-openjpeg
(JPEG 2000), python-gdcm (BSD; lossless JPEG process 14, JPEG-LS, and baseline/extended JPEG),
pyjpegls (CharLS, BSD) and Pillow. pylibjpeg-libjpeg (GPLv3) is deliberately not used.

Pixel pipeline for DICOM, in the order of the standard's grayscale pipeline:

1. modality LUT or rescale slope/intercept (``apply_modality_lut``);
2. VOI: the first window centre/width (LINEAR, LINEAR_EXACT or SIGMOID), else the first VOI LUT,
   else the frame's own min..max;
3. MONOCHROME1 is inverted so that 1.0 is always white;
4. colour (RGB, YBR_*, PALETTE COLOR) becomes luma (ITU-R BT.601 weights).

Multi-frame (a documented choice): the middle frame, ``frames // 2``, is the one analysed, and
likewise the middle instance (by InstanceNumber, then position) of a zipped series. Single-image
classifiers see one view; the middle frame of a cine or tomosynthesis stack is the one least
likely to be a ramp-up or edge slice.

Anything that cannot be read raises :class:`UnsupportedMediaType` (415: not an image we read,
unsupported transfer syntax), :class:`PayloadTooLarge` (413) or :class:`InvalidInput` (422:
truncated, no pixel data, inconsistent header) with the reason. Messages never quote header
values, so no patient data can reach a response or a log through them.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from verticals.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from verticals.domains.medical.settings import get_medical_settings

SourceKind = Literal["dicom", "zip", "png", "jpeg"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@dataclass
class Window:
    """A VOI window in modality units (what the dashboard's window/level controls start at)."""

    center: float
    width: float


@dataclass
class DecodedImage:
    """One decoded image.

    ``pixels``: float32 [H, W] in [0, 1], 1.0 = white, after the full pipeline.
    ``modality_values``: float32 [H, W] after the modality LUT only (for window/level), or the
    grayscale 0..255 values of a PNG/JPEG.
    ``dataset``: the source DICOM dataset *before* de-identification (None for PNG/JPEG);
    callers must de-identify it before storing anything.
    """

    pixels: np.ndarray
    modality_values: np.ndarray
    window: Window
    kind: SourceKind
    dataset: object | None = None
    frames: int = 1
    frame_index: int = 0
    series_instances: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def modality(self) -> str | None:
        value = getattr(self.dataset, "Modality", None) if self.dataset is not None else None
        return str(value).strip().upper() or None if value else None

    @property
    def body_part(self) -> str | None:
        value = (
            getattr(self.dataset, "BodyPartExamined", None) if self.dataset is not None else None
        )
        return str(value).strip().upper() or None if value else None

    @property
    def photometric(self) -> str | None:
        value = (
            getattr(self.dataset, "PhotometricInterpretation", None)
            if self.dataset is not None
            else None
        )
        return str(value).strip().upper() or None if value else None


def sniff(data: bytes) -> SourceKind | None:
    """The kind of upload by its magic bytes (None: not recognised)."""
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data[:4] in _ZIP_MAGIC:
        return "zip"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    return None


def decode_bytes(data: bytes, filename: str = "") -> DecodedImage:
    """Decode an upload's bytes (see the module docstring for what is accepted)."""
    settings = get_medical_settings()
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"upload of {len(data)} bytes exceeds the limit of {settings.max_upload_bytes} bytes",
            {"limit_bytes": settings.max_upload_bytes},
        )
    if not data:
        raise InvalidInput("the uploaded file is empty")
    kind = sniff(data)
    quiet_pydicom()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in ("png", "jpeg"):
            return _decode_raster(data, kind)
        if kind == "zip":
            return _decode_zip(data)
        return _decode_dicom_bytes(data, headerless=kind is None)


def quiet_pydicom() -> None:
    """pydicom's validation warnings can quote element values (names): never let them log."""
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE


def load_image_file(path: str | Path) -> np.ndarray:
    """A DICOM, PNG or JPEG file (or a zipped series) as float32 [H, W] in [0, 1]."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc.strerror or exc}") from None
    return decode_bytes(data, path.name).pixels


# --------------------------------------------------------------------------- PNG / JPEG


def _decode_raster(data: bytes, kind: SourceKind) -> DecodedImage:
    from PIL import Image, UnidentifiedImageError

    settings = get_medical_settings()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > settings.max_pixels:
                raise PayloadTooLarge(
                    f"image of {width}x{height} pixels exceeds the limit of "
                    f"{settings.max_pixels} pixels"
                )
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.asarray(image, dtype=np.float64)
                top = 65535.0 if gray.max() > 255 else 255.0
            else:
                gray = np.asarray(image.convert("L"), dtype=np.float64)
                top = 255.0
    except (PayloadTooLarge, InvalidInput):
        raise
    except Image.DecompressionBombError:
        raise PayloadTooLarge("image has too many pixels (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"the {kind.upper()} file could not be decoded: {exc}") from None
    if gray.ndim != 2 or gray.size == 0:
        raise InvalidInput(f"the {kind.upper()} file holds no 2D image")
    values = gray.astype(np.float32)
    pixels = np.clip(gray / top, 0.0, 1.0).astype(np.float32)
    return DecodedImage(
        pixels=pixels,
        modality_values=values,
        window=Window(center=top / 2.0, width=top + 1.0),
        kind=kind,
    )


# --------------------------------------------------------------------------- zip of a series


def _decode_zip(data: bytes) -> DecodedImage:
    settings = get_medical_settings()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"the zip archive could not be read: {exc}") from None
    if len(members) > settings.max_zip_members:
        raise PayloadTooLarge(
            f"zip holds {len(members)} files; the limit is {settings.max_zip_members}"
        )
    total = sum(m.file_size for m in members)
    if total > settings.max_zip_uncompressed_bytes:
        raise PayloadTooLarge(
            f"zip expands to {total} bytes; the limit is {settings.max_zip_uncompressed_bytes}"
        )
    import pydicom

    candidates: list[tuple[tuple, bytes]] = []
    for member in members:
        name = member.filename.rsplit("/", 1)[-1]
        if name.startswith(".") or name.upper() == "DICOMDIR":
            continue
        if member.file_size > settings.max_upload_bytes:
            raise PayloadTooLarge(f"a file in the zip exceeds {settings.max_upload_bytes} bytes")
        try:
            blob = archive.read(member)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            raise InvalidInput(f"a file in the zip could not be extracted: {exc}") from None
        if sniff(blob) != "dicom":
            continue
        try:
            header = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - an unreadable member is skipped, not fatal
            continue
        if "PixelData" not in header and "FloatPixelData" not in header:
            # stop_before_pixels hides it; check the tag is present in the bytes instead
            if b"\xe0\x7f\x10\x00" not in blob and b"\xe0\x7f\x08\x00" not in blob:
                continue
        candidates.append((_series_order(header, member.filename), blob))
    if not candidates:
        raise UnsupportedMediaType("the zip holds no DICOM image (files must start with DICM)")
    candidates.sort(key=lambda c: c[0])
    chosen = candidates[len(candidates) // 2][1]
    image = _decode_dicom_bytes(chosen, headerless=False)
    image.kind = "zip"
    image.series_instances = len(candidates)
    image.notes.append(
        f"series of {len(candidates)} instances: the middle one (index {len(candidates) // 2}) "
        "was analysed"
    )
    return image


def _series_order(header: object, name: str) -> tuple:
    number = getattr(header, "InstanceNumber", None)
    try:
        number = float(number) if number not in (None, "") else float("inf")
    except (TypeError, ValueError):
        number = float("inf")
    position = getattr(header, "ImagePositionPatient", None)
    try:
        z = float(position[2]) if position is not None and len(position) == 3 else 0.0
    except (TypeError, ValueError):
        z = 0.0
    return (number, z, name)


# --------------------------------------------------------------------------- DICOM


def _decode_dicom_bytes(data: bytes, *, headerless: bool) -> DecodedImage:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=headerless)
    except InvalidDicomError:
        raise UnsupportedMediaType(
            "not a DICOM, PNG, JPEG or zip file", {"accepted": ["dicom", "zip", "png", "jpeg"]}
        ) from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on malformed input
        if headerless:
            raise UnsupportedMediaType(
                "not a DICOM, PNG, JPEG or zip file", {"accepted": ["dicom", "zip", "png", "jpeg"]}
            ) from None
        raise InvalidInput(f"the DICOM file could not be parsed ({type(exc).__name__})") from None
    if headerless and not _looks_like_dicom(ds):
        raise UnsupportedMediaType(
            "not a DICOM, PNG, JPEG or zip file", {"accepted": ["dicom", "zip", "png", "jpeg"]}
        )
    return decode_dataset(ds)


def _looks_like_dicom(ds: object) -> bool:
    """A forced read of random bytes yields a few garbage elements; real DICOM has pixels."""
    try:
        return any(tag in ds for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)) and (  # type: ignore[operator]
            "Rows" in ds and "Columns" in ds  # type: ignore[operator]
        )
    except Exception:  # noqa: BLE001
        return False


def decode_dataset(ds: object) -> DecodedImage:
    """Decode a pydicom Dataset's pixels (middle frame) through the grayscale pipeline."""
    from pydicom.dataset import Dataset

    if not isinstance(ds, Dataset):
        raise InvalidInput("not a DICOM dataset")
    settings = get_medical_settings()
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InvalidInput("the DICOM file has no pixel data (not an image)")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise InvalidInput("the DICOM header lacks valid Rows/Columns/NumberOfFrames") from None
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise InvalidInput("the DICOM header gives an empty image size")
    if rows * cols > settings.max_pixels:
        raise PayloadTooLarge(
            f"frame of {rows}x{cols} pixels exceeds the limit of {settings.max_pixels} pixels"
        )
    _infer_transfer_syntax(ds)
    transfer_syntax = _transfer_syntax(ds)
    if transfer_syntax is not None and transfer_syntax.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(transfer_syntax)
        except (NotImplementedError, ValueError):
            decoder = None
        if decoder is None or not decoder.is_available:
            raise UnsupportedMediaType(
                f"transfer syntax {transfer_syntax.name} ({transfer_syntax}) is not supported",
                {"transfer_syntax_uid": str(transfer_syntax)},
            )
    index = frames // 2
    frame = _decode_frame(ds, index if frames > 1 else None)
    if frame.ndim == 3 and frames > 1 and frame.shape[0] == frames:
        frame = frame[index]  # a decoder that ignored ``index``
    pixels, values, window = _grayscale_pipeline(frame, ds)
    notes = []
    if frames > 1:
        notes.append(f"multi-frame image of {frames} frames: frame {index} was analysed")
    return DecodedImage(
        pixels=pixels,
        modality_values=values,
        window=window,
        kind="dicom",
        dataset=ds,
        frames=frames,
        frame_index=index,
        notes=notes,
    )


def _flag(ds: object, keyword: str) -> str:
    value = getattr(ds, keyword, "")
    return str(value).strip().upper() if value is not None else ""


def _infer_transfer_syntax(ds: object) -> None:
    """A file without file meta (headerless): take the syntax from how it was read."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and str(getattr(meta, "TransferSyntaxUID", "") or "").strip():
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = True, True
    syntax = (
        ImplicitVRLittleEndian
        if implicit
        else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    )
    if meta is None:
        ds.file_meta = FileMetaDataset()  # type: ignore[attr-defined]
    ds.file_meta.TransferSyntaxUID = syntax  # type: ignore[attr-defined]


def _transfer_syntax(ds: object):  # noqa: ANN202 - pydicom UID
    from pydicom.uid import UID

    meta = getattr(ds, "file_meta", None)
    value = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if not value:
        return None
    uid = UID(str(value))
    if not uid.is_transfer_syntax:
        raise UnsupportedMediaType(
            "unknown transfer syntax", {"transfer_syntax_uid": str(uid)[:64]}
        )
    return uid


GPL_DECODER_HINT = (
    "12-bit JPEG Extended needs pylibjpeg-libjpeg (GPLv3), not installed by default: "
    "pip install 'verticals[dicom-gpl]' where that licence is acceptable"
)


def _decode_frame(ds: object, index: int | None) -> np.ndarray:
    from pydicom.pixels import pixel_array

    try:
        return np.asarray(pixel_array(ds, index=index))
    except MemoryError:
        raise PayloadTooLarge("the image is too large to decode in memory") from None
    except NotImplementedError as exc:
        raise UnsupportedMediaType(f"the pixel data cannot be decoded: {_short(exc)}") from None
    except RuntimeError as exc:
        message = _short(exc)
        lowered = message.lower()
        if any(s in lowered for s in ("no pixel data decoders", "missing required", "not support")):
            details = {"hint": GPL_DECODER_HINT} if "jpeg extended" in lowered else None
            raise UnsupportedMediaType(
                f"the pixel data cannot be decoded: {message}", details
            ) from None
        raise InvalidInput(f"the pixel data cannot be decoded: {message}") from None
    except Exception as exc:  # noqa: BLE001 - truncated or inconsistent pixel data
        message = _short(exc)
        if "does not support" in message:
            # e.g. 12-bit JPEG Extended (process 4): only GPL libjpeg decodes it; not installed
            raise UnsupportedMediaType(f"the pixel data cannot be decoded: {message}") from None
        raise InvalidInput(
            f"the pixel data cannot be decoded ({type(exc).__name__}): {message}"
        ) from None


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text[:limit]


def _grayscale_pipeline(frame: np.ndarray, ds: object) -> tuple[np.ndarray, np.ndarray, Window]:
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    photometric = _flag(ds, "PhotometricInterpretation")
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frame.ndim == 3 and frame.shape[-1] in (3, 4) and samples > 1:
        color = True
    elif photometric == "PALETTE COLOR":
        try:
            frame = apply_color_lut(frame, ds)
        except Exception as exc:  # noqa: BLE001
            raise InvalidInput(f"the palette colour LUT cannot be applied: {_short(exc)}") from None
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
        raise InvalidInput(f"the modality LUT / rescale cannot be applied: {_short(exc)}") from None
    if not np.all(np.isfinite(values)):
        raise InvalidInput("rescaled pixel values are not finite (bad rescale slope/intercept)")

    window = _first_window(ds)
    if window is not None:
        pixels = _apply_window(values, window, _flag(ds, "VOILUTFunction") or "LINEAR")
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
    """Unsigned pixels of at most 8 stored bits with no rescale: values are display levels."""
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
