"""One image's class and confidence maps at its own size, from whole-image logits or from bands of rows.

Every prediction path keeps, per pixel, the class (uint8) and the confidence (as the probs PNG
stores it, uint8 ``round(255 p)``, or float32 for the Python API), never a full-size map of every
class: scores arrive as bands of rows (:func:`~dmt.tasks.segmentation.windows.score_bands`; a
whole image is one band), and each band is cropped to the image, brought back to the image's own
size when it was resized on reading (the logits are interpolated, bilinear, before the softmax:
:class:`RowResize`) and reduced a few rows at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dmt.predict.render import confidence_bytes


class RowResize:
    """Bilinear resizing (``align_corners=False``, as ``F.interpolate``) of logits that arrive as bands of rows.

    :meth:`push` takes the next band of input rows and returns the output rows that can now be
    computed: each output row blends the two input rows around its source position, so one input
    row is carried from one band to the next. Columns are resized by ``F.interpolate`` on the
    whole width. The values equal those of one ``F.interpolate`` of the whole map up to float
    rounding (the two directions are blended in another order).
    """

    def __init__(self, in_height: int, out_size: tuple[int, int]) -> None:
        self.in_height, (self.out_height, self.out_width) = in_height, out_size
        self.scale = in_height / self.out_height  # input rows per output row, as torch computes it
        self.done = 0  # output rows returned so far
        self.carry: torch.Tensor | None = None  # the last input row of the previous band

    def _source(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((rows + 0.5) * self.scale - 0.5, 0.0)
        low = np.minimum(src.astype(np.int64), self.in_height - 1)
        high = np.minimum(low + 1, self.in_height - 1)
        return low, high, (src - low).astype(np.float32)

    def push(self, top: int, band: torch.Tensor) -> tuple[int, torch.Tensor]:
        """``band``: input rows ``top ..`` (``1 x C x k x W'``); returns ``(first output row, rows)``."""
        first = top - (0 if self.carry is None else 1)
        rows = band if self.carry is None else torch.cat([self.carry, band], dim=2)
        available = top + band.shape[2]  # input rows [first, available) are held
        wanted = np.arange(self.done, self.out_height)
        low, high, weight = self._source(wanted)
        ready = int(np.count_nonzero(high < available)) if available < self.in_height else len(wanted)
        start = self.done
        self.done += ready
        self.carry = rows[:, :, -1:]
        if not ready:
            return start, rows.new_zeros((*rows.shape[:2], 0, self.out_width))
        low_t = torch.from_numpy(low[:ready] - first).to(rows.device)
        high_t = torch.from_numpy(high[:ready] - first).to(rows.device)
        w = torch.from_numpy(weight[:ready]).to(rows.device).view(1, 1, -1, 1)
        blended = rows.index_select(2, low_t) * (1 - w) + rows.index_select(2, high_t) * w
        if blended.shape[-1] != self.out_width:
            blended = F.interpolate(blended, size=(ready, self.out_width), mode="bilinear", align_corners=False)
        return start, blended


OUT_ROWS = 64  # output rows reduced at once: a read-time resize of s grows a band of k rows to k / s


def assemble(bands: Iterator[tuple[int, int, torch.Tensor]], shapes: list[tuple[int, int]],
             sizes: list[tuple[int, int]], float_confidence: bool = False, probabilities: bool = False
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each image's ``(classes uint8, confidence)`` at its own size, from a batch's bands of scores.

    Every band is cropped to each image, cut into pieces of input rows that give at most about
    :data:`OUT_ROWS` output rows, brought back to the image's size (:class:`RowResize`) and reduced
    (softmax, then the top class and its probability) piece by piece: no ``classes x H x W`` map
    of the image's own size is ever held, whatever the read scale.

    Args:
        bands: ``(first row, end row, N x K x rows x W)`` of the batch, top to bottom.
        shapes: each image's size in the batch (before padding, after the read-time resize).
        sizes: each image's own size on disk, which its outputs take.
        float_confidence: confidence as float32 probabilities (the Python API); otherwise as the
            probs PNG stores it, uint8 ``round(255 p)`` (``dmt predict``).
        probabilities: the scores are probabilities already (an ONNX graph exported so): no softmax.
    """
    kind = np.float32 if float_confidence else np.uint8
    out = [(np.empty(size, np.uint8), np.empty(size, kind)) for size in sizes]
    for i, at, rows in resized_rows(bands, shapes, sizes):
        reduce_rows(rows, out[i], at, probabilities, float_confidence)
    return out


def resized_rows(bands: Iterator[tuple[int, int, torch.Tensor]], shapes: list[tuple[int, int]],
                 sizes: list[tuple[int, int]]) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(image, first output row, 1 x K x k x W scores)``: a batch's bands cropped to each image and
    brought back to its own size (:class:`RowResize`), about :data:`OUT_ROWS` output rows at a time.

    What :func:`assemble` reduces into whole maps; a caller that needs only statistics of the rows
    (``dmt suggest``) reduces them itself (:func:`top_class`) and keeps no map of the image.
    """
    resizers = [RowResize(shape[0], size) if tuple(shape) != tuple(size) else None
                for shape, size in zip(shapes, sizes)]
    steps = [max(1, OUT_ROWS * shape[0] // size[0]) for shape, size in zip(shapes, sizes)]
    for top, end, scores in bands:
        for i, ((h, w), resize, step) in enumerate(zip(shapes, resizers, steps)):
            for first in range(top, min(end, h), step):  # nothing when the band is this image's padding
                rows = scores[i : i + 1, :, first - top : min(first + step, end, h) - top, :w].float()
                at = first
                if resize is not None:
                    at, rows = resize.push(first, rows)
                if rows.shape[2]:
                    yield i, at, rows


def top_class(rows: torch.Tensor, probabilities: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(class, its probability)``, each ``k x W``, of ``1 x K x k x W`` scores (softmax first unless
    they are ``probabilities`` already)."""
    conf, cls = (rows if probabilities else rows.softmax(dim=1)).max(dim=1)
    return cls[0], conf[0]


def reduce_rows(rows: torch.Tensor, maps: tuple[np.ndarray, np.ndarray], at: int, probabilities: bool,
                float_confidence: bool) -> None:
    """Write the class and confidence of ``rows`` (``1 x K x k x W`` scores) into ``maps`` from row ``at``."""
    classes, confidence = maps
    cls, conf = top_class(rows, probabilities)
    classes[at : at + rows.shape[2]] = cls.to(torch.uint8).cpu().numpy()
    top_p = conf.cpu().numpy()
    confidence[at : at + rows.shape[2]] = top_p if float_confidence else confidence_bytes(top_p)
