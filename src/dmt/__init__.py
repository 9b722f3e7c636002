"""dmt: Dynamic Mutual Training for semi-supervised classification and segmentation.

Feng et al., "DMT: Dynamic Mutual Training for Semi-Supervised Learning",
Pattern Recognition 2022 (arXiv 2004.08514).
"""

__version__ = "0.1.0"
