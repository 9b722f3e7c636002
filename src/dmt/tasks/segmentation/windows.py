"""Where sliding windows go on an image: their starts along each side and the default stride.

Plain Python, no torch: :mod:`dmt.tasks.segmentation.inference` places PyTorch's windows with it
and ``dmt predict MODEL.onnx`` (:mod:`dmt.predict.onnx_predict`) places ONNX Runtime's, so both
average exactly the same windows.
"""

from __future__ import annotations

from collections.abc import Sequence


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
