"""The Dockerfiles: hadolint clean (deployments/.hadolint.yaml), multi-stage, bases pinned by
digest, a non-root numeric user, a healthcheck, and the CPU image kept free of CUDA wheels."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deployments" / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))
FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", re.MULTILINE)


def _instructions(path: Path) -> list[str]:
    """Logical instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_there_is_a_cpu_and_a_gpu_dockerfile() -> None:
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile", "Dockerfile.gpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path, dev_tool) -> None:
    result = subprocess.run(
        [
            dev_tool("hadolint"),
            "--config",
            str(ROOT / "deployments" / ".hadolint.yaml"),
            "--no-color",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_fail_an_unpinned_install(dev_tool, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11\nRUN pip install requests\n")
    result = subprocess.run(
        [
            dev_tool("hadolint"),
            "--config",
            str(ROOT / "deployments" / ".hadolint.yaml"),
            "--no-color",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DL3013" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_pinned_non_root_with_healthcheck(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    stages = FROM.findall(text)
    assert len(stages) >= 2, "a build stage and a runtime stage"
    for image in stages:
        if image in re.findall(r"\bAS\s+(\S+)", text, re.IGNORECASE):
            continue  # FROM <earlier stage>
        assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", image), f"{image}: pin tag and digest"
    runtime = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric non-root uid (runAsNonRoot checks it)"
    health = [i for i in _instructions(dockerfile) if i.startswith("HEALTHCHECK")]
    assert len(health) == 1 and "/healthz" in health[0]


def test_cpu_image_installs_torch_from_the_cpu_index_first() -> None:
    steps = [i for i in _instructions(DOCKER / "Dockerfile") if i.startswith("RUN")]
    torch = next(i for i, s in enumerate(steps) if '"torch==2.13.0"' in s)
    assert "--index-url https://download.pytorch.org/whl/cpu" in steps[torch]
    project = next(i for i, s in enumerate(steps) if '".[cpu]"' in s)
    assert torch < project
    assert "nvidia-" in steps[project], "the build fails if a CUDA wheel slipped in"


def test_gpu_image_gets_python_311_without_the_ubuntu_archive() -> None:
    text = (DOCKER / "Dockerfile.gpu").read_text()
    steps = " ".join(_instructions(DOCKER / "Dockerfile.gpu"))
    assert "nvidia/cuda:" in text and "-runtime-" in text
    assert "apt-get install" not in steps and "python3.11" not in steps
    assert "uv python install 3.11" in steps
    assert '".[gpu]"' in steps and '".[cpu]"' not in steps


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**", "exclude everything, then allow what is copied"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for dockerfile in DOCKERFILES:
        for instruction in _instructions(dockerfile):
            if instruction.startswith("COPY") and "--from=" not in instruction:
                sources = instruction.split()[1:-1]
                assert set(sources) <= allowed, f"{dockerfile.name}: {instruction}"
