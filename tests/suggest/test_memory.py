"""The fixed mmap threshold ``dmt suggest`` sets (glibc only)."""

import platform
import sys

import pytest

from dmt.suggest.memory import THRESHOLD, fix_mmap_threshold


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_the_threshold():
    assert fix_mmap_threshold(THRESHOLD) is True


def test_elsewhere_nothing_changes(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert fix_mmap_threshold() is False
