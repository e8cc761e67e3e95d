"""The verifying loader: the one way any artifact file is opened.

Every file a model is served or evaluated from — weights, exported graphs, quantized variants,
caches, reference profiles — has a sha256 recorded in the registry when it was made. Before the
file is used, :func:`load_verified` hashes it again and refuses it with
:class:`~verticals.core.errors.IntegrityError` when it is missing or differs. Callers turn that
into "model unavailable" (503); a mismatch is never repaired silently (that would hide
tampering): an operator looks at ``verticals models verify`` and decides.

:func:`read_verified` returns the verified *bytes* instead of a path: hand those to the runtime
(ONNX Runtime, XGBoost) where it accepts bytes, so a file swapped between the check and the read
cannot slip through.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from verticals.core.errors import IntegrityError

log = logging.getLogger("verticals.integrity")

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_expected(sha256: str, what: str) -> str:
    expected = (sha256 or "").strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise IntegrityError(
            f"{what} has no valid registered sha256; refusing to load it", {"reason": "invalid"}
        )
    return expected


def _missing(path: Path, what: str) -> IntegrityError:
    error = IntegrityError(f"{what} is missing at {path}", {"reason": "missing", "path": str(path)})
    log.error("integrity failure: %s", error.message)
    return error


def _mismatch(path: Path, what: str, expected: str, actual: str) -> IntegrityError:
    error = IntegrityError(
        f"{what} failed its sha256 check; refusing to load it",
        {"reason": "mismatch", "path": str(path), "expected": expected, "actual": actual},
    )
    log.error(
        "integrity failure: %s (%s: expected %s, got %s)", error.message, path, expected, actual
    )
    return error


def load_verified(path: Path, sha256: str, *, what: str) -> Path:
    """``path`` after checking that its content hashes to ``sha256``.

    ``what`` names the artifact in errors and logs (e.g. ``"onnx export of medical/pneumonia:0.1.0"``).
    Raises IntegrityError when the file is missing, is not a regular file, or differs;
    ``details["reason"]`` says which (``missing``, ``mismatch``, ``invalid`` registered digest).
    """
    expected = _check_expected(sha256, what)
    path = Path(path)
    if not path.is_file():
        raise _missing(path, what)
    actual = file_sha256(path)
    if actual != expected:
        raise _mismatch(path, what, expected, actual)
    return path


def read_verified(path: Path, sha256: str, *, what: str) -> bytes:
    """The content of ``path``, hashed as read: the bytes returned are the bytes checked."""
    expected = _check_expected(sha256, what)
    path = Path(path)
    if not path.is_file():
        raise _missing(path, what)
    payload = path.read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise _mismatch(path, what, expected, actual)
    return payload
