"""Shared fixtures for the onnx_rewrite package tests (run by .ci/run after `pip install .`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "testdata" / "models"


@pytest.fixture(scope="session")
def models() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def cli() -> str | None:
    """The onnx-rewrite binary, to compare messages with (ONNX_REWRITE_TOOL, else a build)."""
    for candidate in (
        os.environ.get("ONNX_REWRITE_TOOL"),
        str(ROOT / "target" / "release" / "onnx-rewrite"),
        str(ROOT / "target" / "debug" / "onnx-rewrite"),
        shutil.which("onnx-rewrite"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None
