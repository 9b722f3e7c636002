"""The ground every report figure stands on: pyplot without a display, PNG bytes, plain tick labels.

Every figure of the report is a :class:`ReportFigure`: calling it gives ``(PNG bytes or None,
note)``, its :meth:`~ReportFigure.draw` the matplotlib figure (for a test, or a caller that draws
further). Tick labels are plain numbers on every axis (:func:`plain_ticks`): matplotlib's offset
or power of ten in an axis corner (``+1.234e3``, ``1e6``) is easy to miss on a small plot, and
then every number on the axis reads wrong.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any

from dmt.report.load import RunData
from dmt.run.summary import member_label  # noqa: F401  (one spelling of a model's name, the report's too)

FigureResult = tuple[bytes | None, str]
WIDTH = 6.4  # inches at 100 dpi: two runs side by side fit a 1400-pixel window


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes at 100 dpi, closed afterwards."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def plain_ticks(fig: Any) -> None:
    """Plain numbers on every numeric axis of ``fig`` (colour bars included): no offset, no power of ten."""
    from matplotlib.ticker import ScalarFormatter

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ScalarFormatter):  # categorical and log axes have no offset
                formatter.set_useOffset(False)
                formatter.set_scientific(False)


class ReportFigure:
    """One section's plot. ``figure(run)`` is ``(PNG bytes or None, note)``; ``figure.draw(run)`` is
    ``(matplotlib figure or None, note)`` with its ticks made plain."""

    def __init__(self, draw: Callable[[RunData], tuple[Any, str]]) -> None:
        self._draw = draw
        functools.update_wrapper(self, draw)

    def draw(self, run: RunData) -> tuple[Any, str]:
        fig, note = self._draw(run)
        if fig is not None:
            plain_ticks(fig)
        return fig, note

    def __call__(self, run: RunData) -> FigureResult:
        fig, note = self.draw(run)
        return (None if fig is None else png_bytes(fig)), note
