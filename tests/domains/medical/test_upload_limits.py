"""What an upload may cost is checked before the work starts: bombs are refused from their
headers (the decoders are never called, memory stays flat), the task is validated before any
decode, and a busy server answers 503 with Retry-After instead of decoding more at once."""

from __future__ import annotations

import io
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from verticals.core.errors import InvalidInput, Overloaded, PayloadTooLarge, UnsupportedMediaType
from verticals.domains.medical import bench as bombs
from verticals.domains.medical import imaging, limits
from verticals.domains.medical.dicom_io import DicomFile
from verticals.domains.medical.imaging import decode_bytes, inspect_upload
from verticals.domains.medical.settings import reset_medical_settings

MIB = 1024 * 1024
DEMO = Path(imaging.__file__).parent / "demo"


@pytest.fixture
def medical_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set VERTICALS_MEDICAL_* settings for one test."""

    def apply(**values: object) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"VERTICALS_MEDICAL_{key.upper()}", str(value))
        reset_medical_settings()

    yield apply
    monkeypatch.undo()
    reset_medical_settings()


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any pixel decode (pydicom frame, Pillow raster) fails the test loudly."""
    from PIL import ImageFile

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a decoder was called")

    monkeypatch.setattr(imaging, "decode_frame", forbidden)
    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    monkeypatch.setattr(DicomFile, "dataset", forbidden)


def _peak_bytes(call: Callable[[], object]) -> tuple[object, int]:
    """``call``'s outcome (result or exception) and the peak traced allocation during it."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            outcome: object = call()
        except Exception as exc:  # noqa: BLE001 - returned for the caller to assert on
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _upload(client, headers, data: bytes, task: str | None = None):
    return client.post(
        "/v1/medical/studies",
        files={"file": ("upload.bin", data, "application/octet-stream")},
        data={"task": task} if task is not None else {},
        headers=headers,
    )


# --------------------------------------------------------------------------- bombs


def test_png_bomb_is_refused_from_its_header(no_decoding):
    png = bombs.png_bomb(8000)
    assert len(png) < 100_000  # 64 megapixels in ~62 KB
    with pytest.raises(PayloadTooLarge) as refused:
        decode_bytes(png)
    assert "VERTICALS_MEDICAL_MAX_PIXELS" in refused.value.message
    assert "8000" not in refused.value.message  # no header value quoted


def test_png_under_max_pixels_but_over_the_budget_is_refused(no_decoding, medical_env):
    medical_env(max_decoded_bytes=4 * MIB)
    with pytest.raises(PayloadTooLarge, match="decoding budget"):
        inspect_upload(bombs.png_bomb(1000))  # 1 Mpx costs ~43 MB to decode


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        # 1 GiB of native pixel data declared by Rows x Columns x frames: over the budget
        (lambda: bombs.deflated_dicom(2048, 2048, 128), PayloadTooLarge, "decoding budget"),
        # a tiny image whose pixel data element says 1 GiB: an inconsistent header
        (lambda: bombs.deflated_dicom(64, 64, pixel_mib=1024), InvalidInput, "does not match"),
        # 1 GiB of overlay data before the pixels: the inflated header is capped
        (lambda: bombs.deflated_dicom(64, 64, overlay_mib=1024), PayloadTooLarge, "HEADER_BYTES"),
    ],
)
def test_deflate_bombs_are_refused_before_inflating(no_decoding, build, error, words):
    data = build()
    assert len(data) < 2 * MIB
    outcome, peak = _peak_bytes(lambda: decode_bytes(data))
    assert isinstance(outcome, error), outcome
    assert words in outcome.message
    assert peak < 24 * MIB  # header-sized, never the GiB the stream holds


def test_deflate_bomb_after_the_pixels_stops_at_the_declared_size():
    # the header is consistent; 1 GiB of trailing padding follows the pixel data
    data = bombs.deflated_dicom(64, 64, trailing_mib=1024)
    assert inspect_upload(data).kind == "dicom"
    outcome, peak = _peak_bytes(lambda: decode_bytes(data))
    assert isinstance(outcome, PayloadTooLarge), outcome
    assert "inflates past the pixel data" in outcome.message
    assert peak < 8 * MIB


def test_bounded_inflater_never_holds_more_than_its_cap():
    bomb = bombs.deflate_repeated([(b"\x00" * MIB, 1024)])  # 1 GiB
    source = io.BytesIO(bomb)

    def refuse() -> Exception:
        return PayloadTooLarge("cap")

    stream = limits.BoundedStream(limits.raw_inflater(source.read), 3 * MIB, refuse)
    outcome, peak = _peak_bytes(stream.getvalue)
    assert isinstance(outcome, PayloadTooLarge)
    assert stream.size <= 3 * MIB and peak < 8 * MIB
    corrupt = limits.raw_inflater(io.BytesIO(b"\xff" * 64).read)
    with pytest.raises(InvalidInput, match="corrupt"):
        corrupt(1024)


def test_zip_of_big_members_is_refused_before_extracting_any(no_decoding):
    data = bombs.zip_series_bomb(15)  # 15 x 63 MB (each just under the per-file limit)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sum(m.file_size for m in archive.infolist()) > 890 * MIB
    outcome, peak = _peak_bytes(lambda: decode_bytes(data))
    assert isinstance(outcome, PayloadTooLarge), outcome
    assert "decoding budget" in outcome.message
    assert peak < 8 * MIB  # headers only; the old reader held every member (+0.8 GB)


def _series(members: int, rows: int, cols: int, frames: int) -> bytes:
    data, crc, size = bombs.deflated_member(rows, cols, frames)
    return bombs.zip_of_members([(f"s/img{i:02d}.dcm", data, crc, size) for i in range(members)])


def test_zip_reads_every_header_but_only_the_analysed_members_pixels(monkeypatch):
    calls = {"dataset": 0, "frame": 0}
    dataset, decode_frame = DicomFile.dataset, imaging.decode_frame

    def counted_dataset(self):  # noqa: ANN001, ANN202
        calls["dataset"] += 1
        return dataset(self)

    def counted_frame(ds, index):  # noqa: ANN001, ANN202
        calls["frame"] += 1
        return decode_frame(ds, index)

    monkeypatch.setattr(DicomFile, "dataset", counted_dataset)
    monkeypatch.setattr(imaging, "decode_frame", counted_frame)
    data = _series(9, 512, 512, 32)  # 9 members of 16 MiB each
    image, peak = _peak_bytes(lambda: decode_bytes(data))
    assert image.kind == "zip" and image.series_instances == 9, image
    assert calls == {"dataset": 1, "frame": 1}
    # one member extracted (16 MiB) and its pixel data parsed (16 MiB) plus one frame decoded;
    # reading every member as before would be 144 MiB and more
    assert peak < 64 * MIB


def test_zip_member_is_capped_while_it_inflates(medical_env):
    data = _series(3, 512, 512, 32)
    # the header check passes (one frame is cheap) but extracting 16 MiB does not fit
    medical_env(max_decoded_bytes=20 * MIB)
    outcome, peak = _peak_bytes(lambda: decode_bytes(data))
    assert isinstance(outcome, PayloadTooLarge), outcome
    assert "inflating a file of the zip" in outcome.message
    assert peak < 24 * MIB


def test_zip_limits_on_members_and_methods(medical_env):
    medical_env(max_zip_members=3)
    with pytest.raises(PayloadTooLarge, match="more than 3 files"):
        inspect_upload(_series(5, 8, 8, 1))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("a.dcm", bombs.native_dicom(8, 8))
    with pytest.raises(UnsupportedMediaType, match="stored or deflated"):
        inspect_upload(buffer.getvalue())


def test_huge_declared_rows_and_columns_are_413(no_decoding):
    data = bombs.native_dicom(65535, 65535, pixel_bytes=4096)
    with pytest.raises(PayloadTooLarge) as refused:
        inspect_upload(data)
    assert "65535" not in refused.value.message


def test_cost_estimate_covers_the_measured_decode(dataset_factory, to_bytes):
    """``limits.frame_cost`` (what the budget charges) stays above tracemalloc's peak."""
    rng = np.random.default_rng(0)
    n = 600
    make_dataset = dataset_factory
    gray = make_dataset(
        rng.integers(0, 4000, (n, n)).astype(np.uint16),
        RescaleSlope=2,
        RescaleIntercept=-1000,
        WindowCenter=1000,
        WindowWidth=2000,
    )
    frames = make_dataset(rng.integers(0, 4000, (3, n, n)).astype(np.uint16), frames=3)
    rgb = make_dataset(rng.integers(0, 250, (n, n)).astype(np.uint8), bits=8)
    rgb.SamplesPerPixel, rgb.PhotometricInterpretation, rgb.PlanarConfiguration = 3, "RGB", 0
    rgb.PixelData = rng.integers(0, 250, (n, n, 3)).astype(np.uint8).tobytes()
    palette = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    palette.Rows, palette.Columns = n, n
    palette.PixelData = rng.integers(0, 255, (n, n)).astype(np.uint8).tobytes()
    for ds, other_frames in ((gray, 0), (frames, 2 * n * n * 2), (rgb, 0), (palette, 0)):
        data = to_bytes(ds) if ds is not palette else _saved(ds)
        estimate = imaging._check_header(pydicom.dcmread(io.BytesIO(data)), has_pixels=True).cost
        image, peak = _peak_bytes(lambda data=data: decode_bytes(data))
        assert image.pixels.shape == (n, n), image
        # the parsed copy of the other frames is the upload's own bytes, not charged
        assert estimate + other_frames >= peak, (estimate / n / n, peak / n / n)


def _saved(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- decode slots


def test_decode_slot_times_out_with_overloaded(medical_env):
    medical_env(decode_concurrency=1, decode_wait_s=0.05)
    with limits.decode_slot():
        with pytest.raises(Overloaded) as busy:
            with limits.decode_slot():
                pass
    assert busy.value.status_code == 503 and busy.value.headers == {"Retry-After": "1"}
    with limits.decode_slot():  # released: free again
        pass


def test_ordinary_uploads_still_decode_and_inspect_agrees():
    files = sorted(DEMO.glob("*/*.dcm"))[:4] + [
        Path(get_testdata_file(name))
        for name in ("CT_small.dcm", "image_dfl.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm")
    ]
    for path in files:
        data = path.read_bytes()
        header = inspect_upload(data)
        image = decode_bytes(data)
        assert (header.modality, header.body_part) == (image.modality, image.body_part), path
        assert image.pixels.ndim == 2 and image.pixels.size > 0


# --------------------------------------------------------------------------- through the API


@pytest.mark.usefixtures("fake_models")
def test_unknown_task_is_422_before_anything_is_read(medical_client, auth, monkeypatch):
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the upload was read")

    monkeypatch.setattr(imaging, "_prepare", forbidden)
    r = _upload(medical_client, auth(), bombs.png_bomb(8000), task="brain")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"]["field"] == "task" and "task" in error["message"]


@pytest.mark.usefixtures("fake_models")
def test_bombs_through_the_api_are_4xx_without_decoding(medical_client, auth, no_decoding):
    headers = auth()
    for name, (data, task) in bombs.cases().items():
        if name == "deflate_1gib_trailing":
            continue  # refused while inflating, in the decode step (tested above)
        r = _upload(medical_client, headers, data, task)
        assert r.status_code in (413, 422), (name, r.status_code, r.text)
        assert r.json()["error"]["message"]


@pytest.mark.usefixtures("fake_models")
def test_png_without_task_is_422_before_decoding(medical_client, auth, png_factory, no_decoding):
    image = (np.arange(50 * 70) % 256).reshape(50, 70).astype(np.uint8)
    r = _upload(medical_client, auth(), png_factory(image))
    assert r.status_code == 422
    assert r.json()["error"]["details"]["field"] == "task"


@pytest.mark.usefixtures("fake_models")
def test_busy_decoders_answer_503_with_retry_after(
    medical_client, auth, dicom_factory, medical_env
):
    medical_env(decode_concurrency=1, decode_wait_s=0.1)
    headers, data = auth(), dicom_factory()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limits.decode_slot():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        r = _upload(medical_client, headers, data)
    finally:
        release.set()
        holder.join()
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "overloaded"
    assert _upload(medical_client, headers, data).status_code == 201


# --------------------------------------------------------------------------- header-phase work


def test_a_codestream_larger_than_its_header_is_refused_before_decoding(no_decoding):
    from openjpeg import encode as encode_j2k
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    from tests.domains.medical.conftest import dicom_bytes, make_dataset

    ds = make_dataset(pixels=np.zeros((64, 64), np.uint8), bits=8)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    stream = encode_j2k(np.zeros((512, 512), np.uint8), photometric_interpretation=2)
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    with pytest.raises(InvalidInput, match="codestream"):
        imaging.decode_dataset(pydicom.dcmread(io.BytesIO(dicom_bytes(ds))))


def test_a_matching_codestream_still_decodes():
    image = decode_bytes(Path(get_testdata_file("MR_small_jp2klossless.dcm")).read_bytes())
    assert image.pixels.shape == (64, 64)


def _deflated_without_preamble(inflated: int) -> bytes:
    import zlib

    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = b"".join(deflater.compress(b"\0" * MIB) for _ in range(inflated // MIB))
    return buffer.getvalue() + body + deflater.flush()


def test_a_deflated_file_without_preamble_is_inflated_under_the_caps(medical_env):
    medical_env(max_header_bytes=MIB)
    data = _deflated_without_preamble(64 * MIB)  # pydicom would inflate all 64 MiB at once
    outcome, peak = _peak_bytes(lambda: inspect_upload(data))
    assert isinstance(outcome, PayloadTooLarge), outcome
    assert peak < 8 * MIB


def _many_elements(count: int) -> bytes:
    import struct

    from tests.domains.medical.conftest import dicom_bytes, make_dataset

    base = dicom_bytes(make_dataset())
    at = base.find(b"\xe0\x7f\x10\x00")
    tiny = b"".join(
        struct.pack("<HH2sH", 0x0009 + 2 * (i >> 16), i & 0xFFFF, b"SH", 0) for i in range(count)
    )
    return base[:at] + tiny + base[at:]


def test_a_header_of_too_many_elements_is_refused(medical_env):
    medical_env(max_header_elements=1000)
    assert inspect_upload(_many_elements(500)).kind == "dicom"
    outcome, peak = _peak_bytes(lambda: inspect_upload(_many_elements(5000)))
    assert isinstance(outcome, PayloadTooLarge) and "elements" in str(outcome), outcome
    assert peak < 4 * MIB


def test_elements_nested_in_sequences_count_too(medical_env, dataset_factory, to_bytes):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    medical_env(max_header_elements=1000)
    ds = dataset_factory()
    item = Dataset()
    for i in range(6000):
        item.add_new(0x00090000 | (0x1000 + i), "SH", "")
    ds.add_new(0x00091001, "LO", "ACME")
    ds.add_new(0x00091002, "SQ", Sequence([item]))
    with pytest.raises(PayloadTooLarge, match="elements"):
        inspect_upload(to_bytes(ds))


def test_a_plain_header_is_capped_at_max_header_bytes(medical_env, dataset_factory, to_bytes):
    medical_env(max_header_bytes=MIB)
    ds = dataset_factory()
    ds.add_new(0x00091010, "LO", "ACME")
    ds.add_new(0x00091011, "OB", b"\0" * (2 * MIB))
    with pytest.raises(PayloadTooLarge, match="MAX_HEADER_BYTES"):
        inspect_upload(to_bytes(ds))


def test_a_lying_zip_entry_count_is_caught_by_the_directory_size(medical_env):
    import struct

    medical_env(max_zip_members=10)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(2000):
            archive.writestr(zipfile.ZipInfo(f"{i:x}"), b"")
    data = bytearray(buffer.getvalue())
    struct.pack_into("<HH", data, data.rfind(b"PK\x05\x06") + 8, 1, 1)  # "1 entry"
    with pytest.raises(PayloadTooLarge, match="central directory"):
        limits.zip_directory_entries(bytes(data))


def test_zip_headers_are_charged_to_the_budget_and_read_once(
    medical_env, monkeypatch, dataset_factory, to_bytes
):
    ds = dataset_factory()
    ds.add_new(0x00091010, "LO", "ACME")
    ds.add_new(0x00091011, "OB", b"\0" * MIB)  # a big private element before the pixels
    blob = to_bytes(ds)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(8):
            archive.writestr(f"m{i}.dcm", blob)
    data = buffer.getvalue()
    reads = []
    real = imaging._member_header
    monkeypatch.setattr(imaging, "_member_header", lambda *a: reads.append(1) or real(*a))
    assert inspect_upload(data).kind == "zip"
    assert len(reads) == 8  # one header read per member, the analysed one included
    medical_env(max_decoded_bytes=4 * MIB)  # 8 headers of 1 MiB each pass it
    with pytest.raises(PayloadTooLarge, match="zip's headers"):
        inspect_upload(data)


@pytest.mark.usefixtures("fake_models")
def test_the_header_phase_runs_once_per_upload(medical_client, auth, monkeypatch, dicom_factory):
    calls = []
    real = imaging._prepare
    monkeypatch.setattr(imaging, "_prepare", lambda data: calls.append(1) or real(data))
    for task in (None, "pneumonia"):
        calls.clear()
        r = _upload(medical_client, auth(), dicom_factory(), task=task)
        assert r.status_code == 201, r.text
        assert len(calls) == 1


@pytest.mark.usefixtures("fake_models")
def test_burned_in_is_refused_before_any_pixel_is_decoded(
    medical_client, auth, no_decoding, dicom_factory
):
    r = _upload(medical_client, auth(), dicom_factory(BurnedInAnnotation="YES"), task="pneumonia")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"] == {"reason": "burned_in_annotation"}
