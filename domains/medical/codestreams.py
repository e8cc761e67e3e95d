"""Transfer syntax and encapsulated codestreams of a DICOM data set, checked before decoding:
every JPEG / JPEG-LS / JPEG 2000 frame must declare, in its own codestream, the Rows x Columns
its header declares (what the upload's budget was charged for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from verticals.core.errors import InvalidInput, UnsupportedMediaType

if TYPE_CHECKING:
    from pydicom.uid import UID


def infer_transfer_syntax(ds: object) -> None:
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


def transfer_syntax(ds: object) -> UID | None:
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


def _codestream_families() -> frozenset[str]:
    from pydicom import uid

    names = ("JPEGTransferSyntaxes", "JPEGLSTransferSyntaxes", "JPEG2000TransferSyntaxes")
    names += ("HTJ2KTransferSyntaxes",)
    return frozenset(str(u) for name in names for u in getattr(uid, name, ()))


def check_codestreams(ds: object, frames: int) -> None:
    """Every encapsulated JPEG / JPEG-LS / JPEG 2000 frame must declare, in its own codestream,
    the Rows x Columns the header declares (what the budget was charged for): a small upload
    whose codestream is far larger than its header says is refused (422) before decoding."""
    syntax = transfer_syntax(ds)
    if syntax is None or str(syntax) not in _codestream_families():
        return
    from pydicom.encaps import generate_frames

    rows, cols = int(ds.Rows), int(ds.Columns)  # type: ignore[attr-defined]
    try:
        for frame in generate_frames(ds.PixelData, number_of_frames=frames):  # type: ignore[attr-defined]
            if _codestream_size(frame) != (rows, cols):
                raise InvalidInput(
                    "an encapsulated frame's codestream does not declare the image size the "
                    "DICOM header declares (Rows/Columns)"
                )
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed encapsulation
        raise InvalidInput(
            f"the encapsulated pixel data cannot be split into frames ({type(exc).__name__})"
        ) from None


_J2K_SIZ = b"\xff\x4f\xff\x51"  # SOC then SIZ: the start of a JPEG 2000 codestream
_J2K_SEARCH = 4096  # a JP2 file wrapper (not conformant, but seen) precedes it by a few boxes


def _codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) a JPEG, JPEG-LS (SOF) or JPEG 2000 (SIZ) codestream declares."""
    import struct

    at = frame.find(_J2K_SIZ, 0, _J2K_SEARCH)
    if at >= 0:
        try:
            x, y, x0, y0 = struct.unpack_from(">IIII", frame, at + 8)
        except struct.error:
            return None
        return (y - y0, x - x0)
    return _jpeg_size(frame)


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    try:
        from pydicom.pixels.utils import _get_jpg_parameters
    except ImportError:  # pragma: no cover - a pydicom without it: our own SOF scan
        _get_jpg_parameters = None
    if _get_jpg_parameters is not None:
        try:
            info = _get_jpg_parameters(frame)
        except Exception:  # noqa: BLE001
            info = {}
        if "height" in info and "width" in info:
            return (int(info["height"]), int(info["width"]))
        return None
    return _scan_sof(frame)  # pragma: no cover


def _scan_sof(frame: bytes) -> tuple[int, int] | None:
    """The SOF0..15 / SOF55 (JPEG-LS) frame size, walking the marker segments."""
    import struct

    if frame[:2] != b"\xff\xd8":
        return None
    offset = 2
    sof = {0xC0 + n for n in range(16)} - {0xC4, 0xC8, 0xCC} | {0xF7}
    while offset + 9 <= len(frame):
        if frame[offset] != 0xFF:
            return None
        marker = frame[offset + 1]
        if marker == 0xFF:
            offset += 1  # fill byte
            continue
        (length,) = struct.unpack_from(">H", frame, offset + 2)
        if marker in sof:
            rows, cols = struct.unpack_from(">HH", frame, offset + 5)
            return (rows, cols)
        offset += 2 + length
    return None
