"""Safe, atomic checkpoints: safetensors for tensors, JSON for everything else.

A training state (model, optimizer, EMA, step, RNG, config ...) is a nested structure of dicts,
lists, numbers, strings and tensors. :func:`save_checkpoint` stores the tensors in a safetensors
file and the structure around them as JSON in the file's metadata, so loading never unpickles
anything: a checkpoint cannot run code. Writes go through :mod:`dmt.atomic` (a temporary file,
fsynced and renamed over the target), so a run killed mid-write (or a full disk) leaves the
previous checkpoint intact.

Files are byte-for-byte reproducible: safetensors writes its metadata in hash-map order, which
changes from one process to the next, so the header is rewritten with the metadata keys sorted.
Identical states give identical files, and runs can be compared by hash.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from dmt.atomic import atomic_path
from dmt.errors import UserError

_FORMAT = "dmt-checkpoint-1"

# _encode and _decode walk a state as dmt.engine.tree.map_tensors walks a batch, but their job is
# another one: they translate the structure itself into JSON and back (tuples and dicts with
# non-string keys, which JSON lacks, become marked objects; a tensor becomes a reference into the
# safetensors file; anything else is refused), so the result is not the input's shape with
# tensors swapped, which is all map_tensors makes.


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        # clone: safetensors refuses tensors that share storage (views, tied weights)
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        # non-string keys (optimizer state is keyed by parameter index)
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj


def sort_header_metadata(path: Path) -> None:
    """Rewrite a safetensors header in place with its ``__metadata__`` keys in sorted order.

    Only the header's JSON changes (same length, padded with spaces as safetensors pads it);
    tensor offsets are relative to the data after the header, so the data is untouched.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        if "__metadata__" in header:
            header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > n:  # cannot happen for the same content; never write a broken file
            raise RuntimeError(f"{path}: reordered safetensors header grew from {n} to {len(text)} bytes")
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a nested state (tensors anywhere inside) to ``path``.

    Raises:
        UserError: the file system refused the write (full disk, read-only, permissions); the
            previous file at ``path``, if any, is left as it was.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors)
    try:
        with atomic_path(path) as tmp:  # removed again if anything below fails
            save_file(tensors, str(tmp), metadata={"format": _FORMAT, "state": json.dumps(tree)})
            sort_header_metadata(tmp)
    except (OSError, SafetensorError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip().splitlines()[0]
        kept = "; the previous checkpoint is kept" if path.exists() else ""
        raise UserError(f"cannot write checkpoint {path}: {reason}{kept}") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle involved)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            if meta.get("format") != _FORMAT:
                raise UserError(f"{path}: not a dmt checkpoint (format {meta.get('format')!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except UserError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UserError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    return _decode(json.loads(meta["state"]), tensors)

