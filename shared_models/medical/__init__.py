"""Shipped medical production models: ``<task>.safetensors`` + ``<task>.card.json`` each."""

from pathlib import Path

ARTIFACT_DIR = Path(__file__).resolve().parent

__all__ = ["ARTIFACT_DIR"]
