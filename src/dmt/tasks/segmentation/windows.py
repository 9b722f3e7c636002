"""Where sliding windows go on an image: whether to cut it, their starts along each side, the default stride.

Plain Python, no torch: :mod:`dmt.tasks.segmentation.inference` places PyTorch's windows with it
and ``dmt predict MODEL.onnx`` (:mod:`dmt.predict.onnx_predict`) places ONNX Runtime's, so both
average exactly the same windows.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_MAX_SIDE = 1024  # eval.max_side's default: larger images are predicted in windows


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
