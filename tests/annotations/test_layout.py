"""The folder writer's parts: placing images (link, symbolic link, copy), masks as palette PNGs, class names."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from dmt.annotations import layout
from dmt.annotations.layout import check_class_names, link_image, mask_png
from dmt.errors import UserError


def refuse(*args, **kwargs):
    raise OSError(1, "Operation not permitted")


def test_an_image_is_hard_linked_else_symbolically_linked_else_copied(tmp_path, monkeypatch):
    src = tmp_path / "a.png"
    src.write_bytes(b"pixels")
    assert link_image(src, tmp_path / "hard.png") == "hard link"
    assert os.stat(tmp_path / "hard.png").st_ino == os.stat(src).st_ino
    monkeypatch.setattr(layout.os, "link", refuse)  # another file system
    assert link_image(src, tmp_path / "soft.png") == "symbolic link"
    assert os.readlink(tmp_path / "soft.png") == str(src.resolve())
    monkeypatch.setattr(layout.os, "symlink", refuse)  # no links at all (some network mounts)
    assert link_image(src, tmp_path / "copy.png") == "copy"
    copy = tmp_path / "copy.png"
    assert not copy.is_symlink() and os.stat(copy).st_ino != os.stat(src).st_ino and copy.read_bytes() == b"pixels"


def test_a_mask_png_holds_the_class_indices():
    mask = np.array([[0, 1, 2], [255, 1, 0]], dtype=np.uint8)
    with Image.open(io.BytesIO(mask_png(mask, np.array([[0, 0, 0], [10, 20, 30], [40, 50, 60]], np.uint8)))) as img:
        assert img.mode == "P"
        np.testing.assert_array_equal(np.asarray(img), mask)
        assert img.getpalette()[3:6] == [10, 20, 30] and img.getpalette()[255 * 3: 256 * 3] == [255, 255, 255]


@pytest.mark.parametrize("names, fragment", [
    (["background", "cat", "cat"], "'cat' is used by 2 classes"),
    (["background", " cat"], "cannot be a line of classes.txt"),
    (["background", ""], "cannot be a line of classes.txt"),
    (["background", *map(str, range(255))], "256 classes"),
])
def test_class_names_classes_txt_cannot_hold_are_refused(names, fragment):
    with pytest.raises(UserError, match=fragment):
        check_class_names(names, "export.json")
