"""Method logic of DMT as small pure functions on tensors: dynamic weights, losses, thresholds, curriculum, mixup.

The bottom layer: imports torch and ``dmt.errors`` only (no engine, data or model imports), so
every function can be unit-tested on hand-made tensors.
"""
