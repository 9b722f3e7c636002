"""The offline demos' data: scikit-learn's bundled digits, and digit scenes built from them.

Nothing here is downloaded; the demos run through the same pipeline as the paper's experiments
(a preset on another dataset). Imports ``data`` (the segmentation source and palette) and ``errors``.
"""
