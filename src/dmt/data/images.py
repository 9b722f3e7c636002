"""Opening image files: one clear line for a missing, unreadable, truncated or oversized file.

Every command reads images through :func:`open_image`: training, evaluation and labelling
(:mod:`dmt.data.segmentation`), the pre-flight check (headers only) and ``dmt predict``. A file
larger than the pixel limit (``data.max_pixels``, ``--max-pixels``; by default Pillow's own,
:data:`DEFAULT_MAX_PIXELS`) is refused from its header, before a single pixel is decoded: a
20000 x 20000 PNG of a megabyte (a decompression bomb) costs nothing and names itself.

The limit is an argument of every call, never a global: Pillow's own guard reads the process-wide
``Image.MAX_IMAGE_PIXELS`` and has no per-call limit, so dmt opens a file with the plugin Pillow
would choose, without that guard (:func:`open_header`), and leaves Pillow's global alone. Two
threads reading with different limits, or a caller's own Pillow code, never see each other's.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from dmt.errors import UserError

#: Pillow's decompression-bomb threshold (89,478,485 pixels, about 9459 x 9459), dmt's default limit.
DEFAULT_MAX_PIXELS = 89_478_485


def check_pixels(path: Path, height: int, width: int, what: str, max_pixels: int | None) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (``None`` or 0: no limit)."""
    if max_pixels and height * width > max_pixels:
        raise UserError(f"{what} {path} is {width}x{height} ({height * width / 1e6:.1f} megapixels), over the "
                        f"limit of {max_pixels:,} pixels (data.max_pixels / --max-pixels); raise the limit if "
                        "the file is genuine")


def open_header(path: Path) -> ImageFile.ImageFile:
    """``path`` opened as :func:`PIL.Image.open` opens it (header read, pixels not yet decoded), with
    no decompression-bomb check: the caller checks its own limit from the header.

    :func:`PIL.Image.open` tries every registered plugin in Pillow's order (``Image.ID``) on the
    file's first bytes and keeps the first that reads its header, then warns from 1x and raises
    from 2x the global ``Image.MAX_IMAGE_PIXELS``. This does the same minus that last check, so a
    limit can be passed per call instead of being swapped in a global shared by every thread.

    Raises:
        FileNotFoundError, OSError: the file cannot be opened.
        UnidentifiedImageError: no plugin reads it.
    """
    with open(path, "rb") as f:
        prefix = f.read(16)
    Image.init()  # every plugin registered, in the order Image.open ends up trying them
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        accepted = accept(prefix) if accept else True
        if not accepted or isinstance(accepted, str):  # a string: looks like fmt, but unsupported
            continue
        try:
            return factory(os.fspath(path), os.fspath(path))  # the image owns (and closes) its file
        except (SyntaxError, IndexError, TypeError, struct.error):  # not this plugin's format after all
            continue
    raise UnidentifiedImageError(f"cannot identify image file {os.fspath(path)!r}")


@contextmanager
def open_image(path: Path, what: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS,
               decode: bool = True) -> Iterator[Image.Image]:
    """The image at ``path``, opened by Pillow; every failure is a :class:`UserError` naming the file.

    Args:
        what: the file's role in messages (``"image"``, ``"mask"``).
        max_pixels: the pixel limit, checked from the header before decoding (``None``: none).
        decode: decode the pixels now, so a truncated file fails here with its name; ``False``
            reads the header only (size and mode).
    """
    path = Path(path)
    try:
        img = open_header(path)
    except FileNotFoundError:
        raise UserError(f"{what} {path} not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"cannot read {what} {path}: {e}") from None
    with img:
        check_pixels(path, img.height, img.width, what, max_pixels)
        if decode:
            try:
                img.load()
            except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
                raise UserError(f"cannot read {what} {path}: {e}") from None
        yield img


def image_size(path: Path, what: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> tuple[tuple[int, int], str]:
    """``((height, width), mode)`` of an image file, from its header only (pixel limit checked)."""
    with open_image(path, what, max_pixels, decode=False) as img:
        return (img.height, img.width), img.mode
