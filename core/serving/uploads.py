"""Reading a multipart upload without trusting its size: stop at the limit, not after it."""

from __future__ import annotations

from fastapi import UploadFile
from verticals.core.errors import PayloadTooLarge

CHUNK = 1 << 20


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refusing (413) as soon as they pass ``limit``: memory is bounded by
    what the route allows, not by what the client sends."""
    chunks, total = [], 0
    while chunk := await upload.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(
                f"upload exceeds the limit of {limit} bytes", {"limit_bytes": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)
