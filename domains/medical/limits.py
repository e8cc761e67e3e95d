"""What one upload may cost, checked before the work starts (DESIGN: bounded resources).

Three bounds, all from :class:`MedicalSettings` (env prefix ``VERTICALS_MEDICAL_``):

- per frame: ``rows * cols <= max_pixels``, read from a PNG/JPEG header or a DICOM's
  Rows/Columns before anything is decoded;
- per upload: a :class:`Budget` of ``max_decoded_bytes`` for what the request materialises beyond
  the upload itself: bytes inflated (zip members, deflated DICOM data sets) plus the estimated
  working memory of decoding the one analysed frame (:func:`frame_cost`). Inflation goes through
  :class:`BoundedStream`, which stops at its cap whatever an archive or a header declares, so a
  lying size field costs at most the cap;
- per process: at most ``decode_concurrency`` decodes at once (:func:`decode_slot`); a request
  that finds every slot taken waits ``decode_wait_s``, then gets :class:`Overloaded` (503 with
  ``Retry-After``).

Worst-case decode memory is therefore about ``decode_concurrency * max_decoded_bytes`` over the
server's baseline. Refusals are :class:`PayloadTooLarge` (413) naming the limit and the setting;
messages never quote header values.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from verticals.core.errors import InvalidInput, Overloaded, PayloadTooLarge
from verticals.domains.medical.settings import get_medical_settings

_PULL = 1 << 16
_MAX_PULL = 1 << 20

# Working memory per pixel of decoding one frame, measured with tracemalloc on the current
# pipeline (float64 throughout): about 40 B/px for 16-bit grayscale (the decoded frame, the
# float64 modality values, window temporaries, the float32 results), 58 for 8-bit RGB/YBR and 60
# for PALETTE COLOR (16-bit RGB from the LUT). The estimate is
# pixels * (samples * (bytes_per_sample + SAMPLE_WORK_BYTES) + PIPELINE_BYTES_PER_PIXEL);
# tests/domains/medical/test_upload_limits.py keeps it above the measured peak.
PIPELINE_BYTES_PER_PIXEL = 34
SAMPLE_WORK_BYTES = 8


def frame_cost(pixels: int, samples: int, bytes_per_sample: int) -> int:
    """Estimated bytes to decode one frame of ``pixels`` pixels and run the grayscale pipeline."""
    return pixels * (samples * (bytes_per_sample + SAMPLE_WORK_BYTES) + PIPELINE_BYTES_PER_PIXEL)


def check_frame_pixels(rows: int, cols: int) -> None:
    """413 when one frame's declared size passes ``max_pixels``."""
    limit = get_medical_settings().max_pixels
    if rows * cols > limit:
        raise PayloadTooLarge(
            f"the image's declared size exceeds the limit of {limit} pixels per frame "
            "(VERTICALS_MEDICAL_MAX_PIXELS)",
            {"limit_pixels": limit},
        )


class Budget:
    """Bytes one upload may still materialise (``max_decoded_bytes`` by default)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else get_medical_settings().max_decoded_bytes
        self.used = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def refuse(self, what: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"{what} would exceed the decoding budget of {self.limit} bytes per upload "
            "(VERTICALS_MEDICAL_MAX_DECODED_BYTES)",
            {"limit_bytes": self.limit},
        )

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise self.refuse(what)
        self.used += nbytes


class BoundedStream(io.RawIOBase):
    """A seekable, read-only file over a producer (a zip member, an inflater), pulled on demand.

    What has been pulled stays in memory so that readers (pydicom) can seek back; pulling past
    ``cap`` bytes raises ``too_large()`` instead. Nothing is pulled beyond what a reader asks for,
    so a header read stops inflating where the header ends.
    """

    def __init__(
        self, pull: Callable[[int], bytes], cap: int, too_large: Callable[[], Exception]
    ) -> None:
        super().__init__()
        self._pull = pull
        self._cap = cap
        self._too_large = too_large
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False

    @property
    def size(self) -> int:
        """Bytes pulled so far."""
        return len(self._buffer)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            self._fill(None)
            position = len(self._buffer) + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        self._pos = max(position, 0)
        return self._pos

    def _fill(self, end: int | None) -> None:
        """Pull until the buffer holds ``end`` bytes (None: everything), within the cap.

        Pulls are at most ``_MAX_PULL`` bytes, so a refusal overshoots the cap by that much.
        """
        while not self._eof and (end is None or len(self._buffer) < end):
            want = _PULL if end is None else max(end - len(self._buffer), _PULL)
            want = min(want, _MAX_PULL, self._cap - len(self._buffer) + 1)
            chunk = self._pull(want)
            if not chunk:
                self._eof = True
                break
            if len(self._buffer) + len(chunk) > self._cap:
                raise self._too_large()
            self._buffer += chunk

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self._fill(None)
            end = len(self._buffer)
        else:
            end = self._pos + size
            self._fill(end)
        with memoryview(self._buffer) as view:
            data = bytes(view[self._pos : end])
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def getvalue(self) -> bytes:
        """Everything, pulled to the end (within the cap)."""
        self._fill(None)
        with memoryview(self._buffer) as view:
            return bytes(view)


def raw_inflater(read_compressed: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """A pull function inflating a raw deflate stream (DICOM's deflated transfer syntax).

    Each call returns at most ``n`` bytes (``zlib`` ``max_length``), so a bomb never inflates
    more than its reader asked for. A corrupt stream is :class:`InvalidInput` (422).
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)

    def pull(n: int) -> bytes:
        while not inflater.eof:
            source = inflater.unconsumed_tail or read_compressed(_PULL)
            try:
                out = inflater.decompress(source, max(n, 1))
            except zlib.error:
                raise InvalidInput("the deflated DICOM data set is corrupt") from None
            if out:
                return out
            if not source:
                return b""  # the input ended before the deflate stream did
        return b""

    return pull


ZIP_NAME_LIMIT = 512  # longest member name + extra field + comment accepted, bytes
_CENTRAL_ENTRY = 46  # fixed part of one central directory entry


def zip_directory_entries(data: bytes) -> int | None:
    """The entry count a zip's end-of-central-directory record declares, read before
    ``zipfile`` builds one object per entry (None: no record found; zipfile will say why).

    The count alone can lie (set to 1 over half a million real entries), so the directory's
    declared size is checked too: more than ``max_zip_members`` entries of at most
    ``ZIP_NAME_LIMIT`` bytes of names cannot fit the size accepted, and zipfile walks the
    directory by that size, so a larger one is refused (413) before it is parsed.
    """
    tail = data[-(22 + 65535) :]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (entries, size) = struct.unpack_from("<HI", tail, at + 10)
    limit = get_medical_settings().max_zip_members
    if size > limit * (_CENTRAL_ENTRY + ZIP_NAME_LIMIT):
        raise PayloadTooLarge(
            f"the zip's central directory is larger than {limit} files can need "
            "(VERTICALS_MEDICAL_MAX_ZIP_MEMBERS)",
            {"limit_files": limit},
        )
    return int(entries)


# --------------------------------------------------------------------------- decode slots

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore(size: int) -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of ``decode_concurrency`` decode slots; 503 (Retry-After) after waiting
    ``decode_wait_s`` for one. Blocking: call it from a worker thread, not the event loop."""
    settings = get_medical_settings()
    semaphore = _semaphore(settings.decode_concurrency)
    if not semaphore.acquire(timeout=settings.decode_wait_s):
        retry = max(1, math.ceil(settings.decode_wait_s))
        raise Overloaded(
            "every image decoder is busy; retry shortly",
            {"decode_slots": settings.decode_concurrency, "retry_after_s": retry},
            retry_after_s=retry,
        )
    try:
        yield
    finally:
        semaphore.release()
