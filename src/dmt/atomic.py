"""The one way dmt writes a file: whole or not at all, whatever moment a kill or a crash comes.

Every writer goes through a temporary file with a unique name in the destination's folder (two
processes, or a leftover of a killed one, never share it), flushes and fsyncs it, renames it over
the destination (``os.replace``: atomic on POSIX and on Windows) and fsyncs the folder so that the
rename itself survives a power cut. Without the first fsync a crash shortly after the rename can
leave an empty or truncated file under the final name: the rename reaches the disk before the data.

A reader therefore sees either the previous file or the new one, never a part. A killed writer
leaves at most its temporary file (``.NAME.XXXX.tmp``), which :func:`remove_leftovers` clears and
which no reader ever opens.

Three forms, for three kinds of writer:

* :func:`atomic_write` yields an open file object (text or binary);
* :func:`atomic_path` yields a temporary path, for libraries that only take a file name
  (``safetensors.save_file``, ``torch.onnx.export``, ``fig.savefig``); it keeps the destination's
  suffix so that writers choosing a format by suffix choose the right one;
* :func:`write_bytes`, :func:`write_text` and :func:`write_json` for whole contents at once.

A folder written whole or not at all (``dmt import``'s output) is filled inside
:func:`atomic_folder`: a temporary folder next to the destination, renamed to it at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"
# .NAME.<8 random hex digits>.tmp[.SUFFIX]
_LEFTOVER = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]+)?$")
# NAME is cut to this many bytes (and an absurdly long SUFFIX dropped) in the temporary name, so
# that a destination whose name is near the file system's limit (255 bytes on most) still has a
# temporary name within it.
_NAME_KEPT = 120
_SUFFIX_KEPT = 100


def _sync_folder(folder: Path) -> None:
    """fsync a folder so that a rename inside it is on disk (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are journaled by NTFS
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network mounts) refuse fsync on a folder: nothing more to do
        pass
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    """Create an empty, new file ``.NAME.XXXXXXXX.tmp[.SUFFIX]`` next to ``path``.

    Not ``tempfile.mkstemp``: it creates files readable by their owner only (0600), whereas a
    plain ``open(path, "w")`` gives the permissions the umask allows (usually 0644). Creating with
    0666 and ``O_EXCL`` keeps that (a model file shared with a team stays readable) and still
    never reuses an existing name.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    name = os.fsdecode(os.fsencode(path.name)[:_NAME_KEPT])
    suffix = path.suffix if len(os.fsencode(path.suffix)) <= _SUFFIX_KEPT else ""
    for _ in range(100):
        tmp = path.parent / f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}{suffix}"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # 1 in 4 billion per existing leftover: draw again
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name next to {path}")


def _commit(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _sync_folder(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it becomes ``path``, atomically.

    The caller writes the temporary file by name (and closes it) inside the block. On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        yield tmp
        _commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing (``mode`` ``"wb"`` or ``"w"``); on a clean exit it replaces ``path``.

    ``with atomic_write(out / "table.csv", "w", newline="") as f: csv.writer(f).writerows(rows)``
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a whole new file: mode 'w' or 'wb', not {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as f:
        yield f
        f.flush()


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder next to ``path``; on a clean exit it becomes ``path``, atomically.

    ``path`` must not exist, or be an empty folder (the rename refuses anything else). The caller
    fills the temporary folder (through this module's writers, or with links) inside the block; on
    an exception the temporary folder and everything in it are removed and ``path`` is left as it
    was, so a reader never sees a half-filled folder under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = os.fsdecode(os.fsencode(path.name)[:_NAME_KEPT])
    for _ in range(100):
        tmp = path.parent / f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        yield tmp
        for folder, _, _ in os.walk(tmp):  # the entries of every folder inside, before the rename shows them
            _sync_folder(Path(folder))
        os.rename(tmp, path)
        _sync_folder(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode(encoding))


def write_json(path: str | Path, data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> None:
    """Write ``data`` as JSON (and a final newline) to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")


def is_leftover(path: str | Path) -> bool:
    """Whether ``path`` is the temporary file of an atomic write (a killed writer's leftover)."""
    return _LEFTOVER.match(Path(path).name) is not None


def remove_leftovers(folder: str | Path, *, recursive: bool = False) -> int:
    """Remove the temporary files killed writers left in ``folder``; returns how many.

    Only names :func:`is_leftover` recognises are touched. ``recursive`` looks into every folder
    below ``folder`` too. Call it only where one writer owns the folder (the run directory's lock
    guarantees that): a live writer's temporary file looks exactly like a leftover.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    gone = 0
    for p in folder.rglob("*") if recursive else folder.iterdir():
        if is_leftover(p) and p.is_file():
            p.unlink(missing_ok=True)
            gone += 1
    return gone
