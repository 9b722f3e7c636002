"""What ``dmt predict`` writes for one image: palette mask, overlay with legend, confidence map, CSV rows.

Pure functions from arrays to PIL images or rows; :mod:`dmt.predict.predict` does the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OVERLAY_ALPHA = 0.5  # share of the class colour in the overlay (0: the image, 1: the mask)
LEGEND_FONT_PX = 13


def full_palette(palette: np.ndarray) -> list[int]:
    """A ``K x 3`` uint8 palette as PIL's flat 768-entry list (unused entries black, 255 white)."""
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(palette)] = palette[:256]
    if len(palette) < 256:
        flat[255] = 255  # the ignore value, should it appear, shows white as in VOC's masks
    return flat.reshape(-1).tolist()


def palette_mask(classes: np.ndarray, palette: np.ndarray) -> Image.Image:
    """A mode ``P`` PNG image whose pixel values are the class indices, coloured by ``palette``."""
    if classes.dtype != np.uint8 or classes.ndim != 2:
        raise ValueError(f"classes must be H x W uint8, got {classes.shape} {classes.dtype}")
    img = Image.fromarray(classes, mode="P")
    img.putpalette(full_palette(palette))
    return img


BLEND_ROWS = 256  # rows blended at once: the float temporaries of a large image stay a few MB


def blend(image: np.ndarray, classes: np.ndarray, palette: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``H x W x 3`` uint8: the image with each pixel's class colour mixed in at ``alpha``.

    Blended :data:`BLEND_ROWS` rows at a time, so a photo of tens of megapixels needs no full-size
    float copies (each pixel's value is the same as from one whole-image computation).
    """
    out = np.empty(image.shape[:2] + (3,), dtype=np.uint8)
    for r in range(0, image.shape[0], BLEND_ROWS):
        colours = palette[classes[r : r + BLEND_ROWS]].astype(np.float32)
        mixed = (1.0 - alpha) * image[r : r + BLEND_ROWS].astype(np.float32) + alpha * colours
        out[r : r + BLEND_ROWS] = np.clip(np.rint(mixed), 0, 255)
    return out


def classes_present(classes: np.ndarray, num_classes: int) -> list[tuple[int, float]]:
    """``(class, share of pixels)`` of every class in the mask, largest share first."""
    counts = np.bincount(classes.reshape(-1), minlength=num_classes)[:num_classes]
    total = max(int(counts.sum()), 1)
    order = sorted((c for c in range(num_classes) if counts[c]), key=lambda c: (-counts[c], c))
    return [(c, counts[c] / total) for c in order]


def _font(px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow without sized default fonts
        return ImageFont.load_default()


def overlay_with_legend(image: np.ndarray, classes: np.ndarray, palette: np.ndarray,
                        names: Sequence[str], alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """The blended image with, on its right, a legend of the classes present (swatch, name, share)."""
    blended = Image.fromarray(blend(image, classes, palette, alpha))
    entries = classes_present(classes, len(names))
    font = _font(LEGEND_FONT_PX)
    row = LEGEND_FONT_PX + 6
    labels = [f"{names[c]} {share:.0%}" for c, share in entries]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max((int(probe.textlength(t, font=font)) for t in labels), default=0)
    legend_w = 8 + row + 4 + text_w + 8
    height = max(blended.height, 8 + row * len(entries))
    canvas = Image.new("RGB", (blended.width + legend_w, height), (255, 255, 255))
    canvas.paste(blended, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = blended.width + 8
    for i, ((c, _), text) in enumerate(zip(entries, labels)):
        y = 4 + i * row
        draw.rectangle([x0, y, x0 + row - 4, y + row - 4], fill=tuple(int(v) for v in palette[c]), outline=(0, 0, 0))
        draw.text((x0 + row + 2, y), text, fill=(0, 0, 0), font=font)
    return canvas


def confidence_bytes(confidence: np.ndarray) -> np.ndarray:
    """The top class's probability as the probs PNG stores it: uint8 ``round(255 * p)`` (255: certain)."""
    return np.clip(np.rint(confidence.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def confidence_image(confidence: np.ndarray) -> Image.Image:
    """A grey PNG of the top class's probability (float, or uint8 from :func:`confidence_bytes`)."""
    return Image.fromarray(confidence if confidence.dtype == np.uint8 else confidence_bytes(confidence), mode="L")


CSV_COLUMNS = ("file", "class", "class_name", "probability", "top_k")


def classification_row(file: str, probs: np.ndarray, names: Sequence[str], k: int) -> dict[str, str]:
    """One CSV row: the top class, its name and probability, and ``name:p;name:p`` for the top ``k``."""
    order = np.argsort(-probs, kind="stable")[: max(k, 1)]
    top = int(order[0])
    return {"file": file, "class": str(top), "class_name": names[top], "probability": f"{probs[top]:.6f}",
            "top_k": ";".join(f"{names[int(c)]}:{probs[int(c)]:.6f}" for c in order)}
