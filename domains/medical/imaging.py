"""Decode an upload into one grayscale image in [0, 1].

Accepted: a DICOM file (any transfer syntax a decoder plugin handles), a zip holding a DICOM
series, PNG and JPEG. Decoders: pydicom's own (native, deflated, RLE), pylibjpeg-openjpeg
(JPEG 2000), python-gdcm (BSD; lossless JPEG process 14, JPEG-LS, and baseline/extended JPEG),
pyjpegls (CharLS, BSD) and Pillow. pylibjpeg-libjpeg (GPLv3) is deliberately not used.

The pixels go through the standard's grayscale pipeline in ``pixels``; encapsulated codestreams
are checked against the header in ``codestreams`` before any frame is decoded.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from verticals.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from verticals.domains.medical.codestreams import (
    check_codestreams,
    infer_transfer_syntax,
    transfer_syntax,
)
from verticals.domains.medical.dicom_io import DicomFile, too_many_elements
from verticals.domains.medical.limits import (
    BoundedStream,
    Budget,
    check_frame_pixels,
    decode_slot,
    frame_cost,
    zip_directory_entries,
)
from verticals.domains.medical.pixels import Window, decode_frame, grayscale_pipeline, header_flag
from verticals.domains.medical.settings import get_medical_settings

SourceKind = Literal["dicom", "zip", "png", "jpeg"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


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


@dataclass(frozen=True)
class UploadHeader:
    """What an upload's headers say, read without decoding a pixel (:func:`inspect_upload`)."""

    kind: SourceKind
    modality: str | None = None
    body_part: str | None = None


@dataclass
class PreparedUpload:
    """An upload whose headers passed every check (:func:`prepare_upload`); ``decode`` does the
    heavy work. ``header``: the analysed DICOM's data set up to its pixel data, before
    de-identification (None for PNG/JPEG)."""

    kind: SourceKind
    header: object | None
    decode: Callable[[], DecodedImage]

    def summary(self) -> UploadHeader:
        return UploadHeader(
            kind=self.kind,
            modality=_header_text(self.header, "Modality"),
            body_part=_header_text(self.header, "BodyPartExamined"),
        )


def decode_bytes(data: bytes | PreparedUpload, filename: str = "") -> DecodedImage:
    """Decode an upload's bytes (see the module docstring for what is accepted), or an upload
    already prepared by :func:`prepare_upload` (its headers are not read again).

    Every limit a header allows is checked first (:func:`inspect_upload`'s checks); then the
    decode runs in one of the process's decode slots (``limits.decode_slot``: 503 when busy).
    """
    prepared = data if isinstance(data, PreparedUpload) else prepare_upload(data)
    with decode_slot(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepared.decode()


def prepare_upload(data: bytes) -> PreparedUpload:
    """The header phase of :func:`decode_bytes`: every limit checked from the headers, nothing
    decoded, no decode slot taken. Raises 413 over a limit, 415 not an image we read, 422
    inconsistent; pass the result to :func:`decode_bytes` to decode it without reading the
    headers a second time."""
    return _prepare(data)


def inspect_upload(data: bytes) -> UploadHeader:
    """Check an upload against every limit using its headers only, and say what it is.

    Nothing is decoded and no decode slot is taken: a PNG/JPEG is opened lazily by Pillow (size
    and mode), a DICOM is parsed up to its pixel data, a zip's members up to theirs (the
    analysed instance's header is the one reported). Raises what :func:`decode_bytes` would
    raise for the same headers: 413 over a limit, 415 not an image we read, 422 inconsistent.
    """
    return _prepare(data).summary()


def _header_text(ds: object | None, keyword: str) -> str | None:
    value = getattr(ds, keyword, None) if ds is not None else None
    return str(value).strip().upper() or None if value else None


def _prepare(data: bytes) -> PreparedUpload:
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
    budget = Budget()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in ("png", "jpeg"):
            return _prepare_raster(data, kind, budget)
        if kind == "zip":
            return _prepare_zip(data, budget)
        return _prepare_dicom(data, headerless=kind is None, budget=budget)


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

# Bytes per pixel Pillow allocates for a mode (2 to 4 bands of 8 bits are stored in 4 bytes).
_PIL_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
_PNG_TEXT_MEMORY = 4 * 1024 * 1024


def _prepare_raster(data: bytes, kind: SourceKind, budget: Budget) -> PreparedUpload:
    """Open lazily (Pillow reads the header, decodes nothing) and check size and cost."""
    from PIL import Image, PngImagePlugin, UnidentifiedImageError

    # text chunks are read while opening, up to MAX_TEXT_MEMORY (64 MiB by default) per image
    PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, _PNG_TEXT_MEMORY)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind.upper()])
        width, height = image.size
    except Image.DecompressionBombError:
        raise PayloadTooLarge("image has too many pixels (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"the {kind.upper()} file could not be decoded: {exc}") from None
    if width <= 0 or height <= 0:
        raise InvalidInput(f"the {kind.upper()} file holds no 2D image")
    check_frame_pixels(height, width)
    budget.charge(
        frame_cost(width * height, 1, _PIL_BYTES_PER_PIXEL.get(image.mode, 4)),
        "decoding this image",
    )
    return PreparedUpload(kind, None, lambda: _decode_raster(image, kind))


def _decode_raster(image: object, kind: SourceKind) -> DecodedImage:
    from PIL import Image

    assert isinstance(image, Image.Image)
    try:
        with image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.asarray(image, dtype=np.float64)
                top = 65535.0 if gray.max() > 255 else 255.0
            else:
                gray = np.asarray(image.convert("L"), dtype=np.float64)
                top = 255.0
    except Image.DecompressionBombError:
        raise PayloadTooLarge("image has too many pixels (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
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

_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _prepare_zip(data: bytes, budget: Budget) -> PreparedUpload:
    """Check the archive's directory, read every member's header (never its pixel data) to
    order the series, check the analysed (middle) instance's header; ``decode`` extracts that one
    member and decodes it. Every member is read through a capped stream: sizes the archive
    declares are checked first but not trusted."""
    settings = get_medical_settings()
    entries = zip_directory_entries(data)
    if entries is not None and entries > settings.max_zip_members:
        raise _too_many_members(settings.max_zip_members)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        # zipfile's messages quote member names, which can be patient names
        raise InvalidInput(f"the zip archive could not be read ({type(exc).__name__})") from None
    if len(members) > settings.max_zip_members:
        raise _too_many_members(settings.max_zip_members)
    if sum(m.file_size for m in members) > settings.max_zip_uncompressed_bytes:
        raise PayloadTooLarge(
            f"the zip's files add up to more than {settings.max_zip_uncompressed_bytes} bytes "
            "(VERTICALS_MEDICAL_MAX_ZIP_UNCOMPRESSED_BYTES)",
            {"limit_bytes": settings.max_zip_uncompressed_bytes},
        )
    candidates: list[tuple[tuple, zipfile.ZipInfo, object, DicomFile]] = []
    for member in members:
        name = member.filename.rsplit("/", 1)[-1]
        if name.startswith(".") or name.upper() == "DICOMDIR":
            continue
        if member.file_size > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"a file in the zip exceeds {settings.max_upload_bytes} bytes",
                {"limit_bytes": settings.max_upload_bytes},
            )
        read = _member_header(archive, member, budget)
        if read is not None:
            candidates.append((_series_order(read[0], member.filename), member, *read))
    if not candidates:
        raise UnsupportedMediaType("the zip holds no DICOM image (files must start with DICM)")
    candidates.sort(key=lambda c: c[0])
    middle = len(candidates) // 2
    _, chosen, header, member_dicom = candidates[middle]
    geometry = _check_header(header, has_pixels=True, dicom=member_dicom)
    budget.charge(geometry.cost, "decoding this image")

    def decode() -> DecodedImage:
        cap = min(settings.max_upload_bytes, budget.left)
        with _open_member(archive, chosen) as handle:
            blob = _read_member(BoundedStream(handle.read, cap, _member_too_large(cap, budget)))
        budget.charge(len(blob), "extracting the analysed file from the zip")
        image = decode_dataset(
            _read_dicom(DicomFile(io.BytesIO(blob), headerless=False, budget=budget), full=True)
        )
        image.kind = "zip"
        image.series_instances = len(candidates)
        image.notes.append(
            f"series of {len(candidates)} instances: the middle one (index {middle}) was analysed"
        )
        return image

    return PreparedUpload("zip", header, decode)


def _too_many_members(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the zip holds more than {limit} files (VERTICALS_MEDICAL_MAX_ZIP_MEMBERS)",
        {"limit_files": limit},
    )


def _member_too_large(cap: int, budget: Budget) -> Callable[[], Exception]:
    if cap < budget.left:
        limit = get_medical_settings().max_upload_bytes
        return lambda: PayloadTooLarge(
            f"a file in the zip inflates past {limit} bytes", {"limit_bytes": limit}
        )
    return lambda: budget.refuse("inflating a file of the zip")


def _open_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo):  # noqa: ANN202 - ZipExtFile
    if member.flag_bits & 0x1:
        raise UnsupportedMediaType("the zip holds an encrypted file")
    if member.compress_type not in _ZIP_METHODS:
        raise UnsupportedMediaType("zip files must be stored or deflated (no bzip2, lzma, ...)")
    try:
        return archive.open(member)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise _unextractable(exc) from None


def _unextractable(exc: BaseException) -> InvalidInput:
    # zipfile's messages quote member names, which can be patient names: the type only
    return InvalidInput(f"a file in the zip could not be extracted ({type(exc).__name__})")


def _read_member(stream: BoundedStream) -> bytes:
    try:
        return stream.getvalue()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _unextractable(exc) from None


def _member_header(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: Budget
) -> tuple[object, DicomFile] | None:
    """A member's DICOM header read through a capped stream, and the reader that read it
    (None: not a DICOM image, or unreadable: skipped). The bytes inflated are charged to the
    upload's budget, so many members' headers cannot add up to more than it allows."""
    cap = min(get_medical_settings().max_header_bytes, budget.left)
    with _open_member(archive, member) as handle:
        stream = BoundedStream(handle.read, cap, _header_too_large(cap, budget))
        dicom = DicomFile(stream, headerless=False, budget=Budget(budget.left))
        try:
            try:
                if sniff(stream.read(132)) != "dicom":
                    return None
                stream.seek(0)
                header = _read_dicom(dicom, full=False)
            except (InvalidInput, UnsupportedMediaType):
                return None  # an unreadable member is skipped, not fatal
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise _unextractable(exc) from None
        finally:
            budget.charge(stream.size + dicom.budget.used, "reading the zip's headers")
    dicom.fp = io.BytesIO()  # keep what the checks need, not the inflated bytes
    if not dicom.has_pixels:
        return None
    return header, dicom


def _header_too_large(cap: int, budget: Budget) -> Callable[[], Exception]:
    limit = get_medical_settings().max_header_bytes
    if cap < limit:
        return lambda: budget.refuse("reading the zip's headers")
    return lambda: PayloadTooLarge(
        f"a DICOM header in the zip exceeds {limit} bytes (VERTICALS_MEDICAL_MAX_HEADER_BYTES)",
        {"limit_bytes": limit},
    )


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

_NOT_AN_IMAGE = "not a DICOM, PNG, JPEG or zip file"
_ACCEPTED = {"accepted": ["dicom", "zip", "png", "jpeg"]}


def _prepare_dicom(data: bytes, *, headerless: bool, budget: Budget) -> PreparedUpload:
    """Parse up to the pixel data and check the header; ``decode`` reads and decodes the rest."""
    dicom = DicomFile(io.BytesIO(data), headerless=headerless, budget=budget)
    header = _read_dicom(dicom, full=False)
    if headerless and not (dicom.has_pixels and "Rows" in header and "Columns" in header):
        # a forced read of random bytes yields a few garbage elements; real DICOM has pixels
        raise UnsupportedMediaType(_NOT_AN_IMAGE, _ACCEPTED)
    geometry = _check_header(header, has_pixels=dicom.has_pixels, dicom=dicom)
    budget.charge(geometry.cost, "decoding this image")
    return PreparedUpload("dicom", header, lambda: decode_dataset(_read_dicom(dicom, full=True)))


def _read_dicom(dicom: DicomFile, *, full: bool) -> object:
    """``dicom``'s header (``full=False``) or whole data set, parse errors as 415/422."""
    from pydicom.errors import InvalidDicomError

    try:
        ds = dicom.dataset() if full else dicom.header()
        # pydicom converts elements lazily: convert them all here, so that a corrupt element
        # (an unknown VR: NotImplementedError) is a 422 now rather than a 500 where it is used;
        # sequences are parsed only now, so their elements are counted here (413 past the limit)
        _convert_all(ds, get_medical_settings().max_header_elements)
        for _ in getattr(ds, "file_meta", None) or ():
            pass
        return ds
    except (PayloadTooLarge, InvalidInput, UnsupportedMediaType):
        raise
    except InvalidDicomError:
        raise UnsupportedMediaType(_NOT_AN_IMAGE, _ACCEPTED) from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on malformed input
        if dicom.headerless:
            raise UnsupportedMediaType(_NOT_AN_IMAGE, _ACCEPTED) from None
        raise InvalidInput(f"the DICOM file could not be parsed ({type(exc).__name__})") from None


def _convert_all(ds: object, limit: int, seen: int = 0) -> int:
    """Convert every element of ``ds``, into its sequences, counting them (413 past ``limit``)."""
    for element in ds:  # type: ignore[attr-defined]
        seen += 1
        if seen > limit:
            raise too_many_elements(limit)
        if element.VR == "SQ":
            for item in element.value:
                seen = _convert_all(item, limit, seen)
    return seen


@dataclass(frozen=True)
class _Geometry:
    frames: int
    cost: int  # estimated bytes to decode one frame (``limits.frame_cost``)


def _check_header(ds: object, *, has_pixels: bool, dicom: DicomFile | None = None) -> _Geometry:
    """Every check a DICOM header allows before a pixel is read: pixel data present, a sane
    and small enough frame, a transfer syntax we decode and, for
    deflated files, pixel data consistent with the declared size and within the budget."""
    if not has_pixels:
        raise InvalidInput("the DICOM file has no pixel data (not an image)")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)  # type: ignore[attr-defined]
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise InvalidInput("the DICOM header lacks valid Rows/Columns/NumberOfFrames") from None
    try:
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        bits = int(getattr(ds, "BitsAllocated", 16) or 16)
    except (TypeError, ValueError):
        raise InvalidInput("the DICOM header lacks valid SamplesPerPixel/BitsAllocated") from None
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise InvalidInput("the DICOM header gives an empty image size")
    if samples <= 0 or not 0 < bits <= 64:
        raise InvalidInput("the DICOM header gives an invalid SamplesPerPixel/BitsAllocated")
    check_frame_pixels(rows, cols)
    infer_transfer_syntax(ds)
    syntax = transfer_syntax(ds)
    if syntax is not None and syntax.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(syntax)
        except (NotImplementedError, ValueError):
            decoder = None
        if decoder is None or not decoder.is_available:
            raise UnsupportedMediaType(
                f"transfer syntax {syntax.name} ({syntax}) is not supported",
                {"transfer_syntax_uid": str(syntax)},
            )
    native = rows * cols * frames * samples * bits // 8  # every frame, before decoding
    bytes_per_sample = (bits + 7) // 8
    if header_flag(ds, "PhotometricInterpretation") == "PALETTE COLOR":
        samples, bytes_per_sample = 3, 2  # the palette's 16-bit RGB output
    cost = frame_cost(rows * cols, samples, bytes_per_sample)
    if dicom is not None and dicom.deflated:
        # all of a deflated file's (native) pixel data is inflated before one frame is decoded
        if not dicom.inflated_pixel_bytes_ok(native):
            raise InvalidInput(
                "the deflated DICOM file's pixel data length does not match the image size its "
                "header declares"
            )
        if native + cost > dicom.budget.left:
            raise dicom.budget.refuse("inflating and decoding this image")
    return _Geometry(frames=frames, cost=cost)


def decode_dataset(ds: object) -> DecodedImage:
    """Decode a pydicom Dataset's pixels (middle frame) through the grayscale pipeline."""
    from pydicom.dataset import Dataset

    if not isinstance(ds, Dataset):
        raise InvalidInput("not a DICOM dataset")
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    geometry = _check_header(ds, has_pixels=has_pixels)
    Budget().charge(geometry.cost, "decoding this image")
    frames = geometry.frames
    index = frames // 2
    check_codestreams(ds, frames)
    frame = decode_frame(ds, index if frames > 1 else None)
    if frame.ndim == 3 and frames > 1 and frame.shape[0] == frames:
        frame = frame[index]  # a decoder that ignored ``index``
    pixels, values, window = grayscale_pipeline(frame, ds)
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
