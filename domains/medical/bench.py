"""``verticals bench medical``: what hostile uploads cost a running server.

A real API server (uvicorn subprocess on 127.0.0.1, temporary home and SQLite database, the
shipped medical models loaded) receives decompression bombs and oversized headers from
``clients`` concurrent clients for ``seconds``, each client cycling through every case below.
The server's resident memory is sampled from ``/proc`` every 20 ms, and its kernel high-water
mark (VmHWM, reset through ``/proc/<pid>/clear_refs`` once the models are loaded) catches what
sampling would miss. Every bomb must get a 4xx (or a 503 when every decode slot is busy); the
one ordinary upload in the rotation shows that the server still answers real work meanwhile.

The bombs are built in milliseconds and a few kilobytes of memory: a deflate stream of N
identical blocks is one compressed block repeated N times (a full flush makes each block
independent of the ones before it).
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
_EMPTY_FINAL_BLOCK = b"\x03\x00"  # a final, empty, fixed-Huffman deflate block


# --------------------------------------------------------------------------- bomb builders


def deflate_repeated(parts: list[tuple[bytes, int]], *, zlib_wrapper: bool = False) -> bytes:
    """A deflate stream inflating to ``unit * count`` for each ``(unit, count)`` in turn, built
    from one compressed block per unit. ``zlib_wrapper``: zlib framing (PNG's IDAT), else raw
    deflate (DICOM's deflated transfer syntax, zip members)."""
    out = [b"\x78\xda"] if zlib_wrapper else []
    adler = 1
    for unit, count in parts:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH)
        out.append(block * count)
        if zlib_wrapper:
            for _ in range(count):
                adler = zlib.adler32(unit, adler)
    out.append(_EMPTY_FINAL_BLOCK)
    if zlib_wrapper:
        out.append(struct.pack(">I", adler))
    return b"".join(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 8000) -> bytes:
    """A black 8-bit grayscale PNG of ``side`` x ``side`` pixels (8000: 64 Mpx in ~62 KB)."""
    rows_per_unit = next(n for n in (100, 50, 40, 25, 20, 10, 8, 5, 4, 2, 1) if side % n == 0)
    unit = b"\x00" * ((side + 1) * rows_per_unit)  # filter byte + pixels, per row
    idat = deflate_repeated([(unit, side // rows_per_unit)], zlib_wrapper=True)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _header_dataset(rows: int, cols: int, frames: int, **attrs: Any) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.PatientName = "Bench^Synthetic"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _part10_prefix(transfer_syntax: str, sop_instance_uid: str) -> bytes:
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import SecondaryCaptureImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + buffer.getvalue()


def _explicit_le(ds: Any) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _element_header(group: int, element: int, vr: bytes, length: int) -> bytes:
    return struct.pack("<HH2sHI", group, element, vr, 0, length)


def deflated_dicom(
    rows: int,
    cols: int,
    frames: int = 1,
    *,
    pixel_mib: int | None = None,
    trailing_mib: int = 0,
    overlay_mib: int = 0,
) -> bytes:
    """A DICOM in the deflated transfer syntax whose pixel data is ``pixel_mib`` MiB of zeros
    (default: what Rows x Columns x frames x 2 bytes declare), preceded by ``overlay_mib`` MiB of
    overlay data (part of the header) and followed by ``trailing_mib`` MiB of trailing padding.
    1 GiB of zeros deflates to about 1 MB."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = _header_dataset(rows, cols, frames)
    declared = rows * cols * frames * 2
    length = declared if pixel_mib is None else pixel_mib * MIB
    parts = [(_explicit_le(ds), 1)]
    if overlay_mib:
        parts.append((_element_header(0x6000, 0x3000, b"OW", overlay_mib * MIB), 1))
        parts.append((b"\x00" * MIB, overlay_mib))
    parts.append((_element_header(0x7FE0, 0x0010, b"OW", length), 1))
    if length % MIB:
        parts.append((b"\x00" * (length % MIB), 1))
    if length // MIB:
        parts.append((b"\x00" * MIB, length // MIB))
    if trailing_mib:
        parts.append((_element_header(0xFFFC, 0xFFFC, b"OB", trailing_mib * MIB), 1))
        parts.append((b"\x00" * MIB, trailing_mib))
    prefix = _part10_prefix(DeflatedExplicitVRLittleEndian, ds.SOPInstanceUID)
    return prefix + deflate_repeated(parts)


def native_dicom(rows: int, cols: int, frames: int = 1, *, pixel_bytes: int | None = None) -> bytes:
    """An explicit-VR little-endian DICOM of zeros; ``pixel_bytes`` overrides the pixel data
    length (a header declaring far more than the file holds)."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds = _header_dataset(rows, cols, frames)
    length = rows * cols * frames * 2 if pixel_bytes is None else pixel_bytes
    prefix = _part10_prefix(ExplicitVRLittleEndian, ds.SOPInstanceUID)
    return (
        prefix
        + _explicit_le(ds)
        + _element_header(0x7FE0, 0x0010, b"OW", length)
        + b"\x00" * length
    )


def deflated_member(rows: int, cols: int, frames: int) -> tuple[bytes, int, int]:
    """A native DICOM of zeros as a raw-deflated zip member: (data, crc32, size)."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds = _header_dataset(rows, cols, frames)
    length = rows * cols * frames * 2
    head = (
        _part10_prefix(ExplicitVRLittleEndian, ds.SOPInstanceUID)
        + _explicit_le(ds)
        + _element_header(0x7FE0, 0x0010, b"OW", length)
    )
    crc = zlib.crc32(head)
    zeros = b"\x00" * MIB
    for _ in range(length // MIB):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(b"\x00" * (length % MIB), crc)
    parts = [(head, 1), (zeros, length // MIB), (b"\x00" * (length % MIB), 1)]
    return deflate_repeated([p for p in parts if p[0] and p[1]]), crc, len(head) + length


def zip_of_members(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of pre-deflated members ``(name, data, crc32, size)``; sizes as given."""
    local, central = [], []
    offset = 0
    for name, data, crc, size in members:
        encoded = name.encode()
        header = struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(encoded), 0
        )
        local.append(header + encoded + data)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )  # fmt: skip
            + encoded
        )
        offset += len(local[-1])
    directory = b"".join(central)
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), offset, 0
    )
    return b"".join(local) + directory + end


def zip_series_bomb(members: int = 15, rows: int = 5600, cols: int = 5600) -> bytes:
    """``members`` DICOM files of ``rows`` x ``cols`` 16-bit zeros (5600 x 5600: 63 MB each,
    just under the 64 MB per-file limit), deflated to about 60 KB each."""
    data, crc, size = deflated_member(rows, cols, 1)
    return zip_of_members([(f"series/img{i:03d}.dcm", data, crc, size) for i in range(members)])


def cases(ordinary: bytes | None = None) -> dict[str, tuple[bytes, str | None]]:
    """Every hostile upload of the bench: name -> (file bytes, task form field or None)."""
    png = png_bomb(8000)
    huge_rows = native_dicom(65535, 65535, pixel_bytes=4096)
    series = zip_series_bomb()
    out: dict[str, tuple[bytes, str | None]] = {
        "png_8000x8000": (png, "pneumonia"),
        "png_8000x8000_no_task": (png, None),
        "deflate_1gib_frames": (deflated_dicom(2048, 2048, 128), "pneumonia"),
        "deflate_1gib_pixel_length": (deflated_dicom(64, 64, pixel_mib=1024), "pneumonia"),
        "deflate_1gib_trailing": (deflated_dicom(64, 64, trailing_mib=1024), "pneumonia"),
        "zip_15_big_members": (series, "pneumonia"),
        "zip_15_big_members_no_task": (series, None),
        "dicom_huge_rows_columns": (huge_rows, "pneumonia"),
        "dicom_huge_rows_columns_no_task": (huge_rows, None),
        "unknown_task": (png, "brain"),
    }
    if ordinary is not None:
        out["ordinary_dicom"] = (ordinary, None)
    return out


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes, from /proc."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def _reset_high_water_mark(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _medical_ready(url: str) -> bool:
    import httpx

    ready = httpx.get(f"{url}/readyz", timeout=5).json()
    return bool(ready.get("domains", {}).get("medical", {}).get("ready"))


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                rss, _ = rss_bytes(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _client(
    url: str,
    key: str,
    bodies: dict[str, tuple[bytes, str | None]],
    stop_at: float,
    offset: int,
    record: Callable[[str, int, float], None],
) -> None:
    """One client: the cases in turn, one request at a time, on a kept-alive connection (a new
    one after a 5xx or a transport error, as the server may close the old one)."""
    import httpx

    names = sorted(bodies)
    i = offset
    client = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"})
    try:
        while time.monotonic() < stop_at:
            name = names[i % len(names)]
            i += 1
            data, task = bodies[name]
            started = time.perf_counter()
            try:
                response = client.post(
                    f"{url}/v1/medical/studies",
                    files={"file": (f"{name}.bin", data, "application/octet-stream")},
                    data={"task": task} if task is not None else {},
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0  # transport failure
            record(name, status, time.perf_counter() - started)
            if status == 0 or status >= 500:
                client.close()
                client = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"})
    finally:
        client.close()


def run_upload_bench(
    *,
    clients: int = 8,
    seconds: float = 60.0,
    ordinary: bool = True,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the bench (see the module docstring); the figures as a JSON-ready dict.
    ``ordinary``: also send one shipped demo DICOM in the rotation."""
    from verticals.core.serving.provision import launched_server, provision_scratch

    started = time.perf_counter()
    demo = sorted((Path(__file__).parent / "demo").glob("*/*.dcm"))
    bodies = cases(demo[0].read_bytes() if demo and ordinary else None)
    log(
        f"{len(bodies)} cases built in {time.perf_counter() - started:.2f}s: "
        + ", ".join(f"{k} {len(v[0]) // 1024} KiB" for k, v in bodies.items())
    )
    with tempfile.TemporaryDirectory(prefix="verticals-bench-medical-") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "VERTICALS_HOME": str(home),
            "VERTICALS_DATABASE_URL": f"sqlite:///{home / 'bench.db'}",
        }
        key = provision_scratch(home, env["VERTICALS_DATABASE_URL"], "medical", ["medical:write"])

        counts: dict[str, Counter[int]] = {name: Counter() for name in bodies}
        latencies: list[float] = []
        lock = threading.Lock()

        def record(name: str, status: int, elapsed: float) -> None:
            with lock:
                counts[name][status] += 1
                latencies.append(elapsed)

        with launched_server(
            "verticals.apps.api:create_app", env, _free_port(), ready=_medical_ready,
            timeout_s=300,
        ) as (url, process):
            time.sleep(2.0)  # let start-up allocations settle
            baseline, _ = rss_bytes(process.pid)
            hwm_reset = _reset_high_water_mark(process.pid)
            log(f"server ready (pid {process.pid}), baseline RSS {baseline / MIB:.0f} MiB")
            sampler = _Sampler(process.pid)
            sampler.start()
            stop_at = time.monotonic() + seconds
            threads = [
                threading.Thread(target=_client, args=(url, key, bodies, stop_at, i, record))
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sampler.stop()
            after, hwm = rss_bytes(process.pid)

    total = Counter[int]()
    for name, counter in counts.items():
        if name != "ordinary_dicom":
            total.update(counter)
    peak = max(sampler.peak, hwm if hwm_reset else 0)
    result = {
        "clients": clients,
        "seconds": seconds,
        "requests": sum(sum(c.values()) for c in counts.values()),
        "baseline_rss_mib": round(baseline / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "peak_rss_sampled_mib": round(sampler.peak / MIB, 1),
        "peak_rss_source": "VmHWM (reset after start-up) and 20 ms samples"
        if hwm_reset
        else "20 ms samples",
        "rss_after_mib": round(after / MIB, 1),
        "samples": sampler.samples,
        "bomb_status_counts": {str(k): v for k, v in sorted(total.items())},
        "bombs_5xx_or_failed": sum(
            v for k, v in total.items() if (k >= 500 and k != 503) or k == 0
        ),
        "per_case": {
            name: {str(k): v for k, v in sorted(counter.items())}
            for name, counter in counts.items()
        },
        "p50_ms": round(1000 * sorted(latencies)[len(latencies) // 2], 1) if latencies else None,
    }
    log(
        f"baseline {result['baseline_rss_mib']} MiB, peak {result['peak_rss_mib']} MiB over "
        f"{result['requests']} requests; bomb statuses {result['bomb_status_counts']}"
    )
    return result
