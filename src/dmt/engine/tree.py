"""One walk over the nested structures a batch or a state is made of: dicts, lists and tuples of tensors.

A batch reaches the engine as whatever its loader built (a dict of tensors, a tuple of an image and
a mask, lists of either); :func:`map_tensors` applies one function to every tensor inside and
keeps the structure around them. Moving a batch to the device and putting its images in
channels_last order are two calls of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def map_tensors(fn: Callable[[torch.Tensor], Any], obj: Any) -> Any:
    """``obj`` with ``fn`` applied to every tensor inside it.

    Dicts come back as plain dicts with the same keys in the same order, lists and tuples as their
    own type; anything else (numbers, strings, None) is returned as it is.

    >>> map_tensors(lambda t: t * 2, {"x": torch.tensor(1), "n": [torch.tensor(2), "a"]})
    {'x': tensor(2), 'n': [tensor(4), 'a']}
    """
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(fn, v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(fn, v) for v in obj)
    return obj
