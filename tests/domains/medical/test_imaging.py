"""Decoding: transfer syntaxes, the grayscale pipeline, multi-frame, PNG/JPEG, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from verticals.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from verticals.domains.medical.imaging import decode_bytes, decode_dataset, load_image_file
from verticals.domains.medical.pixels import Window, apply_window

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _local(name: str) -> Path:
    return TEST_FILES / name


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",  # RLE (pydicom)
        "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless (openjpeg / gdcm)
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS (gdcm / CharLS)
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_lossless_syntaxes_decode_to_the_reference(name):
    reference = decode_bytes(_local("MR_small.dcm").read_bytes())
    decoded = decode_bytes(_local(name).read_bytes())
    np.testing.assert_allclose(decoded.pixels, reference.pixels, atol=1e-6)


def test_lossless_jpeg_process14_decodes_with_gdcm():
    ds = pydicom.dcmread(_local("SC_rgb_jpeg_gdcm.dcm"))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    image = decode_bytes(_local("SC_rgb_jpeg_gdcm.dcm").read_bytes())
    reference = decode_bytes(_local("SC_rgb_rle.dcm").read_bytes())
    np.testing.assert_allclose(image.pixels, reference.pixels, atol=1e-6)


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm", "image_dfl.dcm"])
def test_lossy_and_deflated_syntaxes_decode(name):
    image = decode_bytes(_local(name).read_bytes())
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 2
    assert 0.0 <= image.pixels.min() and image.pixels.max() <= 1.0
    assert image.pixels.std() > 0.01


def test_twelve_bit_jpeg_extended_is_415_not_5xx():
    # only GPL libjpeg decodes 12-bit process 4; we ship BSD decoders and say so
    with pytest.raises(UnsupportedMediaType, match="12-bit"):
        decode_bytes(_local("JPGExtended.dcm").read_bytes())


def test_rescale_and_window_are_applied(dataset_factory):
    pixels = np.array([[0, 1000], [2000, 3000]], dtype=np.uint16)
    ds = dataset_factory(
        pixels=pixels, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=1000, WindowWidth=2000
    )
    image = decode_dataset(ds)
    np.testing.assert_allclose(image.modality_values, pixels * 2.0 - 1000)
    # values -1000, 1000, 3000, 5000 through window [0, 2000]: 0, ~0.5, 1, 1
    assert image.pixels[0, 0] == 0.0
    assert image.pixels[0, 1] == pytest.approx(0.5, abs=1e-3)
    assert image.pixels[1, 0] == 1.0 and image.pixels[1, 1] == 1.0
    assert (image.window.center, image.window.width) == (1000.0, 2000.0)


def test_monochrome1_is_inverted(dataset_factory):
    pixels = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    m2 = decode_dataset(dataset_factory(pixels=pixels, bits=8)).pixels
    m1 = decode_dataset(dataset_factory(pixels=pixels, bits=8, photometric="MONOCHROME1")).pixels
    np.testing.assert_allclose(m1, 1.0 - m2)
    assert m1[0, 0] == 1.0  # lowest stored value is white in MONOCHROME1


def test_voi_lut_sequence_is_used_without_a_window():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    item = pydicom.Dataset()
    item.LUTDescriptor = [4, 0, 8]  # 4 entries from value 0, 8-bit output
    item.LUTData = [0, 85, 170, 255]
    ds.VOILUTSequence = pydicom.Sequence([item])
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    image = decode_dataset(ds)
    # every value >= 3 maps to the last LUT entry, 255 -> 1.0
    levels = np.unique(image.pixels)
    assert image.pixels.max() == 1.0
    assert all(np.isclose(levels[:, None], [0, 1 / 3, 2 / 3, 1.0]).any(axis=1))


def test_window_functions():
    values = np.array([0.0, 50.0, 100.0])
    window = Window(center=50, width=100)
    assert apply_window(values, window, "LINEAR_EXACT").tolist() == [0.0, 0.5, 1.0]
    sigmoid = apply_window(values, window, "SIGMOID")
    assert sigmoid[1] == pytest.approx(0.5) and sigmoid[0] < 0.2 and sigmoid[2] > 0.8


def test_colour_becomes_luma():
    rgb = decode_bytes(_local("SC_rgb_rle.dcm").read_bytes())
    assert rgb.pixels.ndim == 2
    ds = pydicom.dcmread(_local("SC_rgb_rle.dcm"))
    arr = ds.pixel_array.astype(np.float64)
    expected = (arr @ np.array([0.299, 0.587, 0.114])) / 255.0
    np.testing.assert_allclose(rgb.pixels, expected, atol=1e-5)


def test_ybr_and_palette_become_grayscale():
    for name in ("SC_ybr_full_422_uncompressed.dcm", "examples_palette.dcm"):
        image = decode_bytes(_local(name).read_bytes())
        assert image.pixels.ndim == 2 and image.pixels.std() > 0.01


def test_multi_frame_uses_the_middle_frame(dataset_factory):
    frames = np.stack([np.full((8, 8), 50 * i, dtype=np.uint8) for i in range(5)])
    frames[:, 0, 0] = 0
    frames[:, 0, 1] = 255
    image = decode_dataset(dataset_factory(pixels=frames, bits=8, frames=5))
    assert image.frames == 5 and image.frame_index == 2
    assert image.modality_values[4, 4] == 100.0
    assert "frame 2" in image.notes[0]


def test_png_and_jpeg(png_factory):
    gray = (np.arange(30 * 40) % 256).reshape(30, 40).astype(np.uint8)
    png = decode_bytes(png_factory(gray))
    assert png.kind == "png" and png.pixels.shape == (30, 40)
    np.testing.assert_allclose(png.pixels, gray / 255.0, atol=1e-6)
    colour = np.stack([gray, gray, gray], axis=-1)
    jpeg = decode_bytes(png_factory(colour, "JPEG"))
    assert jpeg.kind == "jpeg" and jpeg.pixels.shape == (30, 40)


def test_load_image_file(tmp_path, png_factory, dataset_factory, to_bytes):
    (tmp_path / "a.png").write_bytes(png_factory(np.zeros((5, 7), np.uint8)))
    (tmp_path / "b.dcm").write_bytes(to_bytes(dataset_factory()))
    a = load_image_file(tmp_path / "a.png")
    b = load_image_file(str(tmp_path / "b.dcm"))
    assert a.shape == (5, 7) and a.dtype == np.float32
    assert b.shape == (40, 64) and 0 <= b.min() and b.max() <= 1
    with pytest.raises(InvalidInput):
        load_image_file(tmp_path / "missing.dcm")


def test_any_size_is_accepted_up_to_the_pixel_limit(dataset_factory, to_bytes, monkeypatch):
    from verticals.domains.medical.settings import reset_medical_settings

    tiny = decode_dataset(dataset_factory(pixels=np.array([[1, 2, 3]], np.uint8), bits=8))
    assert tiny.pixels.shape == (1, 3)
    monkeypatch.setenv("VERTICALS_MEDICAL_MAX_PIXELS", "1000")
    reset_medical_settings()
    try:
        with pytest.raises(PayloadTooLarge):
            decode_bytes(to_bytes(dataset_factory(pixels=np.zeros((40, 40), np.uint8), bits=8)))
    finally:
        monkeypatch.delenv("VERTICALS_MEDICAL_MAX_PIXELS")
        reset_medical_settings()


def test_nan_float_pixels_are_refused(dataset_factory):
    ds = dataset_factory(pixels=np.zeros((4, 4), np.uint8), bits=8)
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.tobytes()
    assert decode_dataset(ds).pixels.max() == 1.0  # float pixels are fine
    values[1, 1] = np.nan
    ds.FloatPixelData = values.tobytes()
    with pytest.raises(InvalidInput, match="NaN"):
        decode_dataset(ds)


def test_headerless_dicom_is_read_but_random_bytes_are_not(dataset_factory):
    from pydicom.filewriter import write_dataset

    ds = dataset_factory()
    del ds.file_meta
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)  # no preamble, no "DICM", no file meta
    image = decode_bytes(buffer.getvalue())
    assert image.kind == "dicom" and image.pixels.shape == (40, 64)
    with pytest.raises(UnsupportedMediaType):
        decode_bytes(_local("no_meta.dcm").read_bytes())  # headerless and no pixels
    with pytest.raises(UnsupportedMediaType):
        decode_bytes(bytes(range(256)) * 8)
    with pytest.raises(InvalidInput):
        decode_bytes(io.BytesIO(b"").getvalue())


def test_eight_bit_without_voi_keeps_its_levels_like_a_png(dataset_factory, png_factory):
    """No window, 8 bits: the stored levels are display levels (not stretched to min..max), so
    the DICOM and the PNG of one picture reach the model as the same pixels."""
    levels = np.random.default_rng(3).integers(40, 200, size=(32, 32)).astype(np.uint8)
    ds = dataset_factory(levels, bits=8)
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    decoded = decode_dataset(ds)
    np.testing.assert_array_equal(decoded.pixels, levels / np.float32(255.0))
    assert decoded.pixels.max() < 0.8  # not stretched
    png = decode_bytes(png_factory(levels), "x.png")
    np.testing.assert_array_equal(decoded.pixels, png.pixels)


def test_an_8bit_image_with_a_16bit_modality_lut_is_not_read_as_display_levels(
    dataset_factory, to_bytes
):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ramp = np.tile(np.linspace(0, 249, 64).astype(np.uint8), (40, 1))
    ds = dataset_factory(pixels=ramp, bits=8)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "US", (np.arange(256, dtype=np.uint16) * 16).tolist())
    ds.ModalityLUTSequence = Sequence([item])
    image = decode_bytes(to_bytes(ds))
    assert image.modality_values.max() > 255
    assert float((image.pixels >= 1.0).mean()) < 0.05  # was 92% clipped (values / 255)
