"""Fixtures of the import tests: a folder of tiny fabricated images."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotation_fixtures import write_images


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """``photos/`` with a.png, b.png, c.jpg and sub/d.png, all 8 x 6."""
    return write_images(tmp_path / "photos", ["a.png", "b.png", "c.jpg", "sub/d.png"])
