"""Reading classification image files: every mode to 8-bit RGB, EXIF orientation, the centre-square
resize, JPEG draft decoding, one-line errors, and the image set over paths."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from dmt.data.arrays import ArrayDataset
from dmt.data.image_files import ImageFileSet, ResizedSet, read_rgb
from dmt.errors import UserError


def saved(img: Image.Image, path: Path, mode: str | None = None) -> Path:
    """``img`` written to ``path``; checks the file reads back in ``mode`` (the mode under test)."""
    img.save(path)
    with Image.open(path) as back:
        assert back.mode == (mode or img.mode)
    return path


def png_rgb16(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG (Pillow writes none), from an ``(h, w, 3)`` uint16 array."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[r].astype(">u2").tobytes() for r in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def grey(out: np.ndarray) -> np.ndarray:
    """The one channel of a grey result (all three equal)."""
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    return out[..., 0]


def check_array(out: np.ndarray, h: int, w: int) -> None:
    assert out.shape == (h, w, 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_bilevel_grey_and_palette(tmp_path):
    bits = saved(Image.fromarray(np.array([[True, False, True]])), tmp_path / "bits.png", "1")
    assert grey(read_rgb(bits, 0)).tolist() == [[255, 0, 255]]
    g = saved(Image.fromarray(np.array([[0, 77, 200]], np.uint8)), tmp_path / "grey.png", "L")
    out = read_rgb(g, 0)
    check_array(out, 1, 3)
    assert grey(out).tolist() == [[0, 77, 200]]
    pal = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 0, 255, 10, 20, 30])
    assert read_rgb(saved(pal, tmp_path / "pal.png"), 0).tolist() == [[[255, 0, 0], [0, 0, 255], [10, 20, 30]]]


def test_transparency_is_composited_over_white(tmp_path):
    """Alpha 0 -> white, 255 -> the colour, 128 -> halfway; palette and grey transparency likewise."""
    rgba = np.array([[[200, 0, 0, 0], [200, 0, 0, 255], [200, 0, 0, 128]]], np.uint8)
    out = read_rgb(saved(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"), 0).astype(int)
    assert np.abs(out - [[[255, 255, 255], [200, 0, 0], [227, 127, 127]]]).max() <= 1
    la = np.array([[[100, 0], [100, 255], [100, 128]]], np.uint8)
    out = grey(read_rgb(saved(Image.fromarray(la, "LA"), tmp_path / "la.png"), 0)).astype(int)
    assert np.abs(out - [[255, 100, 177]]).max() <= 1
    pal = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 0, 0])  # index 1 is black, but transparent
    pal.info["transparency"] = 1
    path = saved(pal, tmp_path / "pal_t.png")
    with Image.open(path) as back:
        assert "transparency" in back.info
    assert read_rgb(path, 0).tolist() == [[[255, 0, 0], [255, 255, 255]]]


def test_cmyk(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255]]], np.uint8)
    out = read_rgb(saved(Image.fromarray(cmyk, "CMYK"), tmp_path / "cmyk.tif"), 0)
    assert out.tolist() == [[[255, 255, 255], [0, 255, 255], [0, 0, 0]]]


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    """Pillow's own conversion clips 16-bit values to 255 (1000 would be white); here 1000 is 4."""
    values = np.array([[0, 257 * 10, 1000, 32896, 65535]], np.uint16)
    expected = [[0, 10, 4, 128, 255]]
    png = saved(Image.fromarray(values), tmp_path / "g16.png", "I;16")
    assert grey(read_rgb(png, 0)).tolist() == expected
    big_endian = Image.frombytes("I;16B", (5, 1), values.astype(">u2").tobytes())
    assert grey(read_rgb(saved(big_endian, tmp_path / "g16b.tif"), 0)).tolist() == expected


def test_32_bit_integer_and_float_grey(tmp_path):
    pgm = tmp_path / "g16.pgm"  # Pillow reads a 16-bit PGM as mode I
    pgm.write_bytes(b"P5\n3 1\n65535\n" + np.array([0, 257 * 100, 65535], ">u2").tobytes())
    with Image.open(pgm) as img:
        assert img.mode == "I"
    assert grey(read_rgb(pgm, 0)).tolist() == [[0, 100, 255]]
    wide = saved(Image.fromarray(np.array([[-3, 70000, 34998]], np.int32)), tmp_path / "i32.tif", "I")
    assert grey(read_rgb(wide, 0)).tolist() == [[0, 255, 127]]  # outside 0..65535: stretched min..max
    unit = saved(Image.fromarray(np.array([[0, 0.5, 1]], np.float32)), tmp_path / "unit.tif", "F")
    assert grey(read_rgb(unit, 0)).tolist() == [[0, 128, 255]]
    other = saved(Image.fromarray(np.array([[-1, 1, 3]], np.float32)), tmp_path / "f.tif", "F")
    assert grey(read_rgb(other, 0)).tolist() == [[0, 128, 255]]


def test_16_bit_rgb_png(tmp_path):
    path = png_rgb16(tmp_path / "rgb16.png", np.array([[[0xFF00, 0x8000, 0x00FF]]], np.uint16))
    assert read_rgb(path, 0).tolist() == [[[255, 128, 0]]]


def test_exif_orientation_6_turns_the_pixels(tmp_path):
    """Stored 40 wide x 20 high, left half red; tag 6 (rotate 90 degrees clockwise to view): the
    result is 20 wide x 40 high with the red half on top."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    Image.fromarray(a).save(tmp_path / "plain.jpg", quality=95)
    assert read_rgb(tmp_path / "plain.jpg", 0).shape == (20, 40, 3)
    out = read_rgb(tmp_path / "turned.jpg", 0).astype(int)
    check_array(out.astype(np.uint8), 40, 20)
    assert np.abs(out[:16] - [255, 0, 0]).max() < 12 and np.abs(out[24:] - [0, 0, 255]).max() < 12


@pytest.mark.parametrize("shape", [(20, 60), (60, 20)])
def test_centre_square_resized(tmp_path, shape):
    """Landscape or portrait: the middle third (green) is the centred square; the rest is cut off."""
    a = np.zeros((*shape, 3), np.uint8)
    long_axis = int(np.argmax(shape))
    index = [slice(None)] * 2
    for lo, hi, colour in ((0, 15, (255, 0, 0)), (15, 45, (0, 255, 0)), (45, 60, (0, 0, 255))):
        index[long_axis] = slice(lo, hi)
        a[tuple(index)] = colour
    out = read_rgb(saved(Image.fromarray(a), tmp_path / "stripes.png"), 10)
    check_array(out, 10, 10)
    assert (out == [0, 255, 0]).all()
    assert read_rgb(saved(Image.fromarray(a[:5, :5]), tmp_path / "small.png"), 12).shape == (12, 12, 3)


def test_a_jpeg_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    """An 800 x 600 JPEG read at 32: decoded at 1/8 (100 x 75), yet close to the full decode."""
    y, x = np.mgrid[0:600, 0:800]
    a = np.stack([x * 255 // 800, y * 255 // 600, (x + y) * 255 // 1400], -1).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "photo.jpg", quality=90)
    Image.fromarray(a).save(tmp_path / "photo.png")
    decoded = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self):
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    small = read_rgb(tmp_path / "photo.jpg", 32)
    assert decoded[0] == (100, 75)
    check_array(small, 32, 32)
    assert np.abs(small.astype(int) - read_rgb(tmp_path / "photo.png", 32)).mean() < 3


def test_bad_files_are_one_line_naming_the_file(tmp_path):
    good = saved(Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 9), tmp_path / "good.png", "RGB")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:80])
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "full.jpg")
    cut_jpeg = tmp_path / "cut.jpg"
    cut_jpeg.write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    cases = {truncated: "cannot read", cut_jpeg: "cannot read", garbage: "cannot read",
             tmp_path / "missing.png": "not found"}
    for path, what in cases.items():
        with pytest.raises(UserError) as info:
            read_rgb(path, 16)
        assert str(path) in str(info.value) and what in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError, match="over the limit of 100 pixels"):
        read_rgb(good, 16, max_pixels=100)


def test_image_file_set(tmp_path):
    for k in range(3):
        Image.fromarray(np.full((8, 12, 3), 40 * k, np.uint8)).save(tmp_path / f"{k}.png")
    paths = [tmp_path / f"{k}.png" for k in range(3)]
    s = ImageFileSet(paths, [1, -1, 0], ["a", "b"], size=6)
    assert len(s) == 3 and s.labels.dtype == np.int64 and s.classes == ["a", "b"] and s.paths == paths
    assert (s.image(2) == 80).all() and s.image(2).shape == (6, 6, 3)
    sub = s.subset([2, 0])
    assert sub.paths == [paths[2], paths[0]] and sub.labels.tolist() == [0, 1] and sub.size == 6
    many = ImageFileSet([tmp_path / f"{k:06d}.png" for k in range(10_000)], np.full(10_000, -1), ["a"], 96)
    assert len(pickle.dumps(many)) < 1_000_000  # paths, no pixels: what a DataLoader worker copies
    with pytest.raises(ValueError):
        ImageFileSet(paths, [0, 2, 0], ["a", "b"], 6)
    with pytest.raises(ValueError):
        ImageFileSet(paths, [0, 1], ["a", "b"], 6)


def test_images_are_writable_arrays_as_the_image_set_protocol_gives_them(tmp_path):
    """Not read-only views of Pillow's buffer: ``torch.from_numpy`` warns on those (once, mid-run)."""
    path = saved(Image.fromarray(np.full((8, 12, 3), 9, np.uint8)), tmp_path / "a.png")
    for size in (0, 6):
        image = read_rgb(path, size)
        assert image.flags.writeable and image.flags.c_contiguous
    arrays = ArrayDataset(np.zeros((2, 8, 8, 3), np.uint8), np.zeros(2, np.int64), ["a"])
    grey = ArrayDataset(np.zeros((2, 8, 8, 1), np.uint8), np.zeros(2, np.int64), ["a"])
    for base in (arrays, grey):
        image = ResizedSet(base, 12).image(1)
        assert image.flags.writeable and image.flags.c_contiguous and image.shape[:2] == (12, 12)
