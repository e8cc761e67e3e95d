"""Read one DICOM file in two steps, so that its header is checked before its pixels are touched.

:meth:`DicomFile.header` parses everything before the pixel data and stops there (pydicom's
``stop_when``), recording whether a top-level pixel data element exists and its declared length;
:meth:`DicomFile.dataset` then reads the whole data set. Neither decodes pixels.

The deflated transfer syntax (1.2.840.10008.1.2.1.99) deflates the whole data set after the file
meta. pydicom inflates it in one ``zlib.decompress`` call with no bound, so such files are read
here instead: the file meta by pydicom, the rest through a raw-deflate inflater behind a
:class:`BoundedStream`. The header is inflated within ``max_header_bytes``; the whole data set
within the upload's budget and within header + declared pixel data + a small trailing allowance,
so a bomb stops at the first cap it reaches. Every byte inflated is charged to the budget.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from verticals.core.errors import PayloadTooLarge
from verticals.domains.medical.limits import BoundedStream, Budget, raw_inflater
from verticals.domains.medical.settings import get_medical_settings

PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_UNDEFINED = 0xFFFFFFFF
_ELEMENT_HEADER = 12  # tag, VR, reserved, 32-bit length (explicit VR, OB/OW/OF/OD)
_TRAILING_ALLOWANCE = 1024 * 1024  # elements after the pixel data (padding, signatures)


def _not_file_meta(tag: Any, vr: str | None, length: int) -> bool:
    return int(tag) >> 16 != 2


class DicomFile:
    """One DICOM file held by ``fp`` (seekable, positioned at its start).

    ``headerless``: read without a preamble and file meta (pydicom's ``force``). Parse errors
    propagate as pydicom raises them; callers map them to 415/422. Caps raise 413.
    """

    def __init__(self, fp: BinaryIO, *, headerless: bool, budget: Budget) -> None:
        self.fp = fp
        self.headerless = headerless
        self.budget = budget
        self.start = fp.tell()
        self.has_pixels = False
        self.pixel_length: int | None = None  # declared; None when undefined (encapsulated)
        self.deflated = False
        self._preamble: bytes | None = None
        self._meta: Any = None
        self._body_start = 0
        self._header_end = 0  # deflated: offset of the pixel data element in the inflated data
        self._read_header = False

    def _at_pixels(self, tag: Any, vr: str | None, length: int) -> bool:
        if int(tag) in PIXEL_TAGS:
            self.has_pixels = True
            self.pixel_length = None if length == _UNDEFINED else int(length)
            return True
        return False

    def header(self) -> Any:
        """The data set up to (not including) its pixel data, as a pydicom ``FileDataset``."""
        from pydicom.filereader import read_partial

        self._read_header = True
        self.has_pixels, self.pixel_length = False, None
        if self._check_deflated():
            return self._read_deflated(header_only=True)
        self.fp.seek(self.start)
        return read_partial(self.fp, stop_when=self._at_pixels, force=self.headerless)

    def dataset(self) -> Any:
        """The whole data set (pixel data included, not decoded)."""
        import pydicom

        if not self._read_header:
            self.header()
        if self.deflated:
            return self._read_deflated(header_only=False)
        self.fp.seek(self.start)
        return pydicom.dcmread(self.fp, force=self.headerless)

    def inflated_pixel_bytes_ok(self, expected: int) -> bool:
        """Deflated only: whether the declared pixel data length fits the image size the header
        declares (``expected`` bytes of native pixel data, all frames)."""
        if not self.deflated or self.pixel_length is None:
            return True
        return self.pixel_length <= expected + _TRAILING_ALLOWANCE

    # ------------------------------------------------------------------ deflated

    def _check_deflated(self) -> bool:
        from pydicom.dataset import FileMetaDataset
        from pydicom.filereader import read_dataset, read_preamble
        from pydicom.uid import DeflatedExplicitVRLittleEndian

        self.fp.seek(self.start)
        try:
            preamble = read_preamble(self.fp, False)
            meta = read_dataset(
                self.fp, is_implicit_VR=False, is_little_endian=True, stop_when=_not_file_meta
            )
            syntax = str(meta.get("TransferSyntaxUID", "") or "").strip()
        except Exception:  # noqa: BLE001 - not a Part 10 file, or odd meta: pydicom reads it
            return False
        if syntax != DeflatedExplicitVRLittleEndian:
            return False
        self.deflated = True
        self._preamble, self._meta = preamble, FileMetaDataset(meta)
        self._body_start = self.fp.tell()
        return True

    def _read_deflated(self, *, header_only: bool) -> Any:
        from pydicom.dataset import FileDataset
        from pydicom.filereader import read_dataset

        settings = get_medical_settings()
        if header_only:
            cap = min(settings.max_header_bytes, self.budget.left)
            too_large = (
                (lambda: self.budget.refuse("inflating the DICOM header"))
                if cap < settings.max_header_bytes
                else lambda: PayloadTooLarge(
                    f"the DICOM header exceeds {settings.max_header_bytes} bytes once inflated "
                    "(VERTICALS_MEDICAL_MAX_HEADER_BYTES)",
                    {"limit_bytes": settings.max_header_bytes},
                )
            )
        else:
            cap = self.budget.left
            if self.pixel_length is not None:
                cap = min(
                    cap,
                    self._header_end + _ELEMENT_HEADER + self.pixel_length + _TRAILING_ALLOWANCE,
                )
            too_large = (
                (lambda: self.budget.refuse("inflating the DICOM data set"))
                if cap == self.budget.left
                else lambda: PayloadTooLarge(
                    "the deflated DICOM data set inflates past the pixel data its header declares",
                )
            )
        self.fp.seek(self._body_start)
        stream = BoundedStream(raw_inflater(self.fp.read), cap, too_large)
        dataset = read_dataset(
            stream,
            is_implicit_VR=False,
            is_little_endian=True,
            stop_when=self._at_pixels if header_only else None,
        )
        if header_only:
            self._header_end = stream.tell()
        self.budget.charge(stream.size, "inflating the deflated DICOM data set")
        ds = FileDataset(
            io.BytesIO(),
            dataset,
            self._preamble,
            self._meta,
            is_implicit_VR=False,
            is_little_endian=True,
        )
        ds.set_original_encoding(False, True, dataset._character_set)
        return ds
