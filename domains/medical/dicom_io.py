"""Read one DICOM file in two steps, so that its header is checked before its pixels are touched.

:meth:`DicomFile.header` parses everything before the pixel data and stops there (pydicom's
``stop_when``), recording whether a top-level pixel data element exists and its declared length;
:meth:`DicomFile.dataset` then reads the whole data set. Neither decodes pixels.

The deflated transfer syntax (1.2.840.10008.1.2.1.99) deflates the whole data set after the file
meta. pydicom inflates it in one ``zlib.decompress`` call with no bound, so such files are read
here instead: the file meta by pydicom, the rest through a raw-deflate inflater behind a
:class:`BoundedStream`. The header is inflated within ``max_header_bytes``; the whole data set
within the upload's budget and within header + declared pixel data + a small trailing allowance,
so a bomb stops at the first cap it reaches. Every byte inflated is charged to the budget. A file
without a preamble whose file meta says deflated takes the same capped path.

Every read is also bounded in work: the header (everything before the pixel data) within
``max_header_bytes``, and the elements parsed within ``max_header_elements`` (top-level elements
are counted exactly; elements nested in sequences through the reads pydicom makes, at least one
per element), so a file of millions of tiny elements is refused before it costs memory.
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


_READS_PER_ELEMENT = 4  # reads pydicom makes per element, at most, for ordinary elements


def _not_file_meta(tag: Any, vr: str | None, length: int) -> bool:
    return int(tag) >> 16 != 2


def too_many_elements(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the DICOM data set holds more than {limit} elements "
        "(VERTICALS_MEDICAL_MAX_HEADER_ELEMENTS)",
        {"limit_elements": limit},
    )


def _header_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the DICOM header exceeds {limit} bytes (VERTICALS_MEDICAL_MAX_HEADER_BYTES)",
        {"limit_bytes": limit},
    )


class _Metered:
    """A file over ``fp`` that refuses (413) past ``max_reads`` reads or, when ``max_bytes`` is
    set, once its position passes ``start + max_bytes``. pydicom reads at least once per element
    (nested ones included), so the read count bounds the elements parsed."""

    def __init__(self, fp: Any, *, max_reads: int, elements: int, max_bytes: int | None) -> None:
        self._fp = fp
        self._start = fp.tell()
        self._max_reads = max_reads
        self._elements = elements
        self._max_bytes = max_bytes
        self.reads = 0
        self.name = getattr(fp, "name", None)

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > self._max_reads:
            raise too_many_elements(self._elements)
        if self._max_bytes is not None:
            allowed = self._start + self._max_bytes - self._fp.tell()
            if size is None or size < 0 or size > allowed:
                data = self._fp.read(allowed + 1 if allowed >= 0 else 1)
                if len(data) > allowed:
                    raise _header_too_large(self._max_bytes)
                return data
        return self._fp.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()


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
        self.elements = 0  # top-level elements seen by the current read

    def _metered(self, fp: Any, *, max_bytes: int | None) -> _Metered:
        self.elements = 0
        limit = get_medical_settings().max_header_elements
        return _Metered(
            fp, max_reads=_READS_PER_ELEMENT * limit + 64, elements=limit, max_bytes=max_bytes
        )

    def _count(self, tag: Any, vr: str | None, length: int) -> bool:
        self.elements += 1
        limit = get_medical_settings().max_header_elements
        if self.elements > limit:
            raise too_many_elements(limit)
        return False

    def _at_pixels(self, tag: Any, vr: str | None, length: int) -> bool:
        self._count(tag, vr, length)
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
        limit = get_medical_settings().max_header_bytes
        reader = self._metered(self.fp, max_bytes=limit)
        ds = read_partial(reader, stop_when=self._at_pixels, force=self.headerless)  # type: ignore[arg-type]
        if self.fp.tell() - self.start > limit + _ELEMENT_HEADER:
            raise _header_too_large(limit)
        return ds

    def dataset(self) -> Any:
        """The whole data set (pixel data included, not decoded)."""
        from pydicom.filereader import read_partial

        if not self._read_header:
            self.header()
        if self.deflated:
            return self._read_deflated(header_only=False)
        self.fp.seek(self.start)
        reader = self._metered(self.fp, max_bytes=None)
        return read_partial(reader, stop_when=self._count, force=self.headerless)  # type: ignore[arg-type]

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
            # a file without preamble (read with ``force``) may still carry file meta: pydicom
            # would inflate its deflated data set without a bound, so it comes here too
            preamble = read_preamble(self.fp, True)
            if preamble is None:
                self.fp.seek(self.start)
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
            self._metered(stream, max_bytes=None),  # type: ignore[arg-type]
            is_implicit_VR=False,
            is_little_endian=True,
            stop_when=self._at_pixels if header_only else self._count,
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
