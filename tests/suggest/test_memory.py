"""The fixed mmap threshold ``dmt suggest`` sets, through the engine's one setter (glibc only)."""

import platform
import sys

import pytest

from dmt.engine.heap import map_large_blocks
from dmt.suggest.suggest import MMAP_THRESHOLD


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_the_threshold():
    assert map_large_blocks(MMAP_THRESHOLD) is True


def test_elsewhere_nothing_changes(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert map_large_blocks(MMAP_THRESHOLD) is False
