"""Segmentation heads: what turns a body's features into per-pixel logits.

DeepLab's ASPP and decoder (``deeplab``), the DPT head of vision transformers (``dpt``).

A head imports torch alone; the models (one file per model family, one level up) pair it with a body.
"""
