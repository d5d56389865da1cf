"""Shared test helpers: paths and the marker for tests that need the real DT Mart data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DTMART_DIR = REPO_ROOT.parent / "shared/data/dtmart"

requires_dtmart = pytest.mark.skipif(not DTMART_DIR.exists(), reason="../shared/data/dtmart not present")


def assert_one_line(err: Exception, *parts: str) -> str:
    """The error text is one line and contains every part; returns the text."""
    text = str(err)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"
    return text
