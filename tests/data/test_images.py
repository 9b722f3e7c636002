"""Opening image files: the pixel limit from the header, truncated and unreadable files, one line each."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmt.data.images import DEFAULT_MAX_PIXELS, image_size, open_image
from dmt.errors import UserError


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says ``width x height`` (8-bit grey) with a tiny, incomplete image stream:
    what a decompression bomb looks like to a reader that trusts the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_default_is_pillows_threshold():
    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS


def test_a_bomb_is_refused_from_its_header_with_its_size(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(UserError) as info:
        with open_image(bomb):
            pass
    line = str(info.value)
    assert "\n" not in line and str(bomb) in line and "20000x20000" in line and "data.max_pixels" in line
    with pytest.raises(UserError, match="over the limit of 100 pixels"):
        image_size(png_header_only(tmp_path / "small.png", 20, 20), max_pixels=100)


def test_the_limit_is_ours_not_pillows(tmp_path):
    """A limit above Pillow's (which would raise from twice its threshold) lets a large header through;
    0 or None is no limit; Pillow's own global is left as it was."""
    big = png_header_only(tmp_path / "big.png", 20000, 20000)
    before = Image.MAX_IMAGE_PIXELS
    assert image_size(big, max_pixels=20000 * 20000) == ((20000, 20000), "L")
    assert image_size(big, max_pixels=None) == ((20000, 20000), "L")
    assert Image.MAX_IMAGE_PIXELS == before


def test_truncated_missing_and_foreign_files_are_one_line(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8)).save(good)
    with open_image(good) as img:
        assert img.size == (64, 48)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    text = tmp_path / "text.png"
    text.write_bytes(b"not an image at all")
    for path, says in ((truncated, "cannot read image"), (text, "cannot read image"),
                       (tmp_path / "absent.png", "not found")):
        with pytest.raises(UserError) as info:
            with open_image(path):
                pass
        assert says in str(info.value) and str(path) in str(info.value)
    # the header alone opens a truncated file: the pre-flight's header check does not decode
    assert image_size(truncated)[0] == (48, 64)


def test_threads_with_different_limits_do_not_interfere(tmp_path):
    """The limit is an argument, not Pillow's global swapped per call: a thread reading without a
    limit never lifts Pillow's guard for a thread using Pillow directly, nor another's limit."""
    import sys
    import threading

    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    small = png_header_only(tmp_path / "small.png", 20, 20)
    before = Image.MAX_IMAGE_PIXELS
    failures: list[str] = []
    start = threading.Barrier(3)

    def unlimited():
        start.wait()
        for _ in range(300):
            if image_size(bomb, max_pixels=None) != ((20000, 20000), "L"):
                failures.append("no limit: refused")

    def limited():
        start.wait()
        for _ in range(300):
            try:
                image_size(small, max_pixels=100)
                failures.append("limit 100: a 400-pixel image passed")
            except UserError:
                pass

    def plain_pillow():
        start.wait()
        for _ in range(300):
            try:
                Image.open(bomb).close()
                failures.append("Pillow's own guard was lifted")
            except Image.DecompressionBombError:
                pass

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a swapped global would show
    try:
        threads = [threading.Thread(target=f) for f in (unlimited, limited, plain_pillow)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == [] and Image.MAX_IMAGE_PIXELS == before


def test_header_reading_matches_pillows_open(tmp_path):
    """dmt's open (Pillow's plugins, without Pillow's global guard) reads what Image.open reads."""
    from dmt.data.images import open_header

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for ext in ("png", "jpg", "bmp", "tif", "gif", "webp"):
        path = tmp_path / f"x.{ext}"
        Image.fromarray(pixels).save(path)
        with open_header(path) as ours, Image.open(path) as pillows:
            assert (ours.format, ours.mode, ours.size) == (pillows.format, pillows.mode, pillows.size)
            assert np.array_equal(np.asarray(ours), np.asarray(pillows))
