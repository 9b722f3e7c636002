"""A fabricated Hugging Face hub cache (huggingface_hub's layout) in ``tmp_path``, offline, network blocked.

huggingface_hub's cache (https://huggingface.co/docs/huggingface_hub/guides/manage-cache) keeps each
repository in ``<cache>/models--<org>--<name>/``: ``refs/main`` holds the commit hash of the
revision, ``snapshots/<commit>/<file>`` the file (there a link into ``blobs/``; a plain file is
read the same). :func:`cache_file` writes that layout; the ``hub_cache`` fixture (``tests/conftest.py``)
points the library at an empty cache in ``tmp_path`` with ``HF_HUB_OFFLINE=1`` and makes any socket
connection fail, so a test proves that nothing reached the network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_file(cache: Path, repo_id: str, state: dict[str, torch.Tensor], filename: str = "model.safetensors",
               data: bytes | None = None) -> Path:
    """Put ``state`` (or raw ``data``) into the cache as ``repo_id``'s ``filename`` at revision ``main``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    path = repo / "snapshots" / COMMIT / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
