"""The verifying loader: missing, mismatching and malformed digests are refused."""

from __future__ import annotations

import hashlib
import logging

import pytest
from verticals.core.errors import IntegrityError
from verticals.core.registry import file_sha256, load_verified, read_verified


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "graph.onnx"
    path.write_bytes(b"\x08\x07graph-bytes" * 100)
    return path


def test_matching_file_is_returned(artifact):
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert file_sha256(artifact) == digest
    assert load_verified(artifact, digest, what="test graph") == artifact
    assert load_verified(artifact, digest.upper(), what="test graph") == artifact
    assert read_verified(artifact, digest, what="test graph") == artifact.read_bytes()


@pytest.mark.parametrize("loader", [load_verified, read_verified])
def test_mismatch_is_refused_and_logged(artifact, loader, caplog):
    digest = file_sha256(artifact)
    with artifact.open("ab") as handle:
        handle.write(b"\x00")
    with caplog.at_level(logging.ERROR, logger="verticals.integrity"):
        with pytest.raises(IntegrityError, match="test graph failed its sha256 check") as err:
            loader(artifact, digest, what="test graph")
    assert err.value.details["reason"] == "mismatch"
    assert err.value.details["expected"] == digest
    assert err.value.details["actual"] == file_sha256(artifact)
    assert "integrity failure" in caplog.text and "test graph" in caplog.text


@pytest.mark.parametrize("loader", [load_verified, read_verified])
def test_missing_file_is_refused(tmp_path, loader):
    with pytest.raises(IntegrityError, match="missing") as err:
        loader(tmp_path / "absent.onnx", "0" * 64, what="test graph")
    assert err.value.details["reason"] == "missing"
    with pytest.raises(IntegrityError, match="missing"):  # a folder is not an artifact
        loader(tmp_path, "0" * 64, what="test graph")


@pytest.mark.parametrize("digest", ["", "abc", "g" * 64])
def test_no_valid_registered_digest_is_refused(artifact, digest):
    with pytest.raises(IntegrityError, match="no valid registered sha256") as err:
        load_verified(artifact, digest, what="test graph")
    assert err.value.details["reason"] == "invalid"
