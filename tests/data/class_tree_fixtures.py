"""Tiny classification image trees for tests: the ``imagefolder`` layout with every feature the
reader must handle (nesting, upper-case extensions, hidden files), and a tree's exact state."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image


def put(path: Path, value: int = 0) -> Path:
    """A tiny image file (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.fromarray(np.full((6, 8, 3), value, np.uint8)).save(path, format=fmt)
    return path


LABELLED = ["labelled/cat/a.png", "labelled/cat/z/deep/b.JPG", "labelled/cat/z.png", "labelled/bird/c.png",
            "labelled/Dog/d.jpeg", "labelled/Dog/e.png"]
UNLABELLED = ["unlabelled/u.png", "unlabelled/x/y/v.jpg", "unlabelled/x/w.png", "unlabelled/a.png"]
VAL = ["val/cat/v1.png", "val/Dog/v2.png"]
TEST = ["test/bird/t1.png", "test/cat/t2.png", "test/cat/t0.png"]


def tree(root: Path, hidden: bool = True) -> Path:
    """Every file above, each with its own pixel value (no two files hold the same bytes), plus
    (``hidden``) files dmt must skip: hidden ones, a hidden class folder, files without an image
    extension."""
    for k, rel in enumerate(LABELLED + UNLABELLED + VAL + TEST):
        put(root / rel, k)
    if hidden:
        put(root / "labelled/.ipynb_checkpoints/x.png")
        put(root / "labelled/cat/.hidden.png")
        put(root / "unlabelled/.cache/h.png")
        (root / "labelled/cat/notes.txt").write_text("not an image")
        (root / "unlabelled/Thumbs.db").write_bytes(b"\0")
    return root


def tree_state(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (folders and links included) with its bytes' sha256 and its
    modification time: equal before and after, the tree is byte-identical and untouched."""
    state = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top, name)
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            state[str(path.relative_to(root))] = f"{digest} {st.st_mtime_ns} {st.st_mode}"
    return state
