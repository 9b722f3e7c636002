"""Datasets in their official layouts, the paper's splits, transforms and the pseudo-label store.

Readers (``voc``, ``cityscapes``, ``folder``, ``cifar``) only read a dataset, never write into it.
``splits`` and ``published_splits`` are the split protocols; ``transforms``,
``classification_transforms`` and ``randaugment`` the augmentation presets; ``labels`` the
per-phase store of class and confidence maps. Imports ``method`` (threshold keys) and ``errors``.
"""
