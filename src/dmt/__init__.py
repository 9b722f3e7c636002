"""dmt: Dynamic Mutual Training for semi-supervised classification and segmentation.

Feng et al., "DMT: Dynamic Mutual Training for Semi-Supervised Learning",
Pattern Recognition 2022 (arXiv 2004.08514).

The public API is what ``__all__`` lists (documented in docs/api.md); everything else is private
and may change. Names load on first use (PEP 562), so ``import dmt`` imports no torch:

* trained models: :func:`load_model` -> :class:`Model` (``model.predict(images)`` ->
  :class:`Prediction`), :func:`export_model` (ONNX / TorchScript, verified);
* experiments: :func:`run_experiment` (``dmt run`` from Python), :func:`load_config`;
* the method inside your own training loop: :func:`dynamic_weights`,
  :func:`weighted_cross_entropy`, :func:`mixup_cross_entropy`, :func:`max_softmax`,
  :func:`confidence_histogram`, :func:`class_balanced_thresholds`, :func:`apply_class_thresholds`,
  :func:`select_most_confident`, :func:`select_class_balanced`, :data:`DEFAULT_RATIOS`, :func:`ramped_gamma`,
  :class:`PseudoLabelStore`, :func:`histogram_of_store`;
* :class:`UserError`, the one exception for a user's mistake.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "load_model": "dmt.predict.model",
    "Model": "dmt.predict.model",
    "Prediction": "dmt.predict.model",
    "export_model": "dmt.predict.export",
    "run_experiment": "dmt.run.api",
    "load_config": "dmt.config",
    "dynamic_weights": "dmt.method.api",
    "weighted_cross_entropy": "dmt.method.losses",
    "mixup_cross_entropy": "dmt.method.losses",
    "max_softmax": "dmt.method.confidence",
    "confidence_histogram": "dmt.method.thresholds",
    "class_balanced_thresholds": "dmt.method.thresholds",
    "apply_class_thresholds": "dmt.method.thresholds",
    "select_most_confident": "dmt.method.selection",
    "select_class_balanced": "dmt.method.selection",
    "DEFAULT_RATIOS": "dmt.method.curriculum",
    "ramped_gamma": "dmt.method.curriculum",
    "PseudoLabelStore": "dmt.data.labels",
    "histogram_of_store": "dmt.data.labels",
    "UserError": "dmt.errors",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Load a public name on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'dmt' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
