"""Sliding windows: whether to cut an image, where the windows go, and their scores averaged band by band.

Every inference path goes through :func:`score_bands`: evaluation and labelling
(:func:`~dmt.tasks.segmentation.inference.window_bands`, a torch module under autocast) and
``dmt predict`` / ``dmt.load_model`` (:mod:`dmt.predict.pipeline`, a torch module or an ONNX
Runtime session), so every runtime averages exactly the same windows in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from dmt.config.validate import check_window

DEFAULT_MAX_SIDE = 1024  # eval.max_side's default: larger images are predicted in windows
BAND_ROWS = 64  # rows of scores handed out at once by score_bands

Score = Callable[[torch.Tensor], torch.Tensor]  # N x C x h x w images -> N x K x h x w scores


def default_stride(window: Sequence[int]) -> tuple[int, int]:
    """Two thirds of the window (at least 1 pixel), the step UniMatch's Cityscapes evaluation uses."""
    return tuple(max(1, int(s * 2 / 3)) for s in window)  # type: ignore[return-value]


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Where windows start along one side: every ``stride`` pixels, the last one flush with the far edge.

    Windows keep their full size (the last is moved back rather than cut short), so every pixel is
    covered and the model always sees inputs of the size it was trained on.
    """
    if window >= size:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


def inference_window(size: Sequence[int], window: Sequence[int] | None, max_side: int | None
                     ) -> Sequence[int] | None:
    """The window an image (or padded batch) of ``size`` is predicted in; None: whole.

    ``window`` (``eval.window``) when the run evaluates in windows; otherwise an image whose
    larger side exceeds ``max_side`` (``eval.max_side``, ``dmt predict --max-side``; 0 or None:
    no limit) is cut into ``max_side`` squares, so memory is bounded by a window, not by the image.
    """
    if window is not None:
        return window
    if max_side and max(size) > max_side:
        return (max_side, max_side)
    return None


def score_bands(score: Score, images: torch.Tensor, window: Sequence[int] | None,
                stride: Sequence[int] | None = None) -> Iterator[tuple[int, int, torch.Tensor]]:
    """The scores of ``images`` at the input resolution, as consecutive bands of rows, top to bottom.

    Yields ``(first_row, end_row, scores N x K x rows x W)``; the bands cover every row once.
    Whole images (``window`` None or covering them) are one band: ``score(images)`` as it comes.
    In windows, ``score`` sees ``window``-sized crops (clipped to the image) placed every
    ``stride`` pixels (default: :func:`default_stride`), the last one flush with the edge; the
    crops' scores are summed in float32, and the rows no later window reaches are yielded,
    :data:`BAND_ROWS` at a time, divided by the number of windows covering each pixel. One buffer
    of ``window height`` rows of scores is held, whatever the image's height.

    Args:
        score: maps ``N x C x h x w`` images (crops of ``images``) to scores at that resolution.
        images: the batch (any dtype ``score`` takes), on the device ``score`` runs on.
        window: ``(height, width)`` of the crops, or None for the whole image.
        stride: ``(height, width)`` steps between crops, each between 1 and the window's side.
    """
    h, w = images.shape[-2:]
    if window is None or (window[0] >= h and window[1] >= w):
        yield 0, h, score(images)
        return
    check_window(window, stride)
    stride = tuple(stride) if stride is not None else default_stride(window)
    wh, ww = min(window[0], h), min(window[1], w)
    tops, lefts = window_starts(h, wh, stride[0]), window_starts(w, ww, stride[1])
    # sums and window counts of rows base .. base + wh (no window reaches further): one buffer,
    # allocated at the first window, whose finished rows are handed out and then shifted away
    base, total = 0, None
    counts = torch.zeros(wh, w, dtype=torch.float32, device=images.device)
    for k, top in enumerate(tops):
        for left in lefts:
            scores = score(images[..., top : top + wh, left : left + ww]).float()
            if total is None:
                total = scores.new_zeros((images.shape[0], scores.shape[1], wh, w))
            total[:, :, top - base : top - base + wh, left : left + ww] += scores
            counts[top - base : top - base + wh, left : left + ww] += 1
            del scores
        done = tops[k + 1] if k + 1 < len(tops) else h  # no later window reaches rows above this
        assert total is not None
        for r in range(0, done - base, BAND_ROWS):  # a few rows at a time: small temporaries downstream
            end = min(r + BAND_ROWS, done - base)
            yield base + r, base + end, total[:, :, r:end] / counts[r:end]
        _shift_rows(total, counts, done - base)
        base = done


def _shift_rows(total: torch.Tensor, counts: torch.Tensor, n: int) -> None:
    """Drop the first ``n`` rows of the buffers (dimension 2 of ``total``, 0 of ``counts``): the rest
    moves up, in blocks of ``n`` rows so that no copy reads what it writes, and the freed rows are zeroed."""
    rows = counts.shape[0]
    for r in range(0, rows - n, n):
        m = min(n, rows - n - r)
        total[:, :, r : r + m].copy_(total[:, :, r + n : r + n + m])
        counts[r : r + m].copy_(counts[r + n : r + n + m])
    total[:, :, max(rows - n, 0) :].zero_()
    counts[max(rows - n, 0) :].zero_()
