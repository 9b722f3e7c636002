"""Where the field's benchmark downloads live under ``data.root``, and checks of their files.

CIFAR-10, CIFAR-100 and STL-10 extract to one folder each (``cifar-10-batches-py``,
``cifar-100-python``, ``stl10_binary``); ``data.root`` may name that folder or the one holding it,
as torchvision's dataset classes accept. SVHN's ``.mat`` files sit in ``data.root`` itself. Every
message names the missing file and the official download, so a user can fix the layout from the
one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from dmt.errors import UserError


def find_official_folder(
    root: str | os.PathLike, folder: str, files: tuple[str, ...], dataset: str, url: str
) -> Path:
    """Locate an official download folder given it or the folder holding it, checking its files.

    Args:
        root: ``data.root``: the folder containing ``folder``, or ``folder`` itself.
        folder: The folder the official archive extracts to (e.g. ``cifar-100-python``).
        files: Files the folder must hold; the first one also recognises ``root`` as the folder.
        dataset: The dataset's name for messages ("CIFAR-100").
        url: The official download.

    Returns:
        Path of the folder.

    Raises:
        UserError: If the folder or any of ``files`` is missing (one line naming them and ``url``).
    """
    root = Path(root).expanduser()
    found = root / folder
    if not found.is_dir():
        if root.is_dir() and (root.name == folder or (root / files[0]).exists()):
            found = root
        else:
            raise UserError(
                f"{dataset} not found: no folder {found}; download {url} and extract it "
                f"under data.root ({root}) so that {found} holds {describe_files(files)}"
            )
    missing = [name for name in files if not (found / name).is_file()]
    if missing:
        raise UserError(
            f"{dataset} folder {found} lacks {', '.join(missing)}; download {url} again "
            "and extract it under data.root"
        )
    return found


def describe_files(files: tuple[str, ...]) -> str:
    """``data_batch_1..5 and test_batch`` style list of file names for messages."""
    stems = [name.rstrip("0123456789") for name in files]
    parts: list[str] = []
    i = 0
    while i < len(files):
        j = i
        # a run of numbered files with one stem (data_batch_1 .. data_batch_5) reads as one range
        while j + 1 < len(files) and stems[j + 1] == stems[i] and stems[i] != files[i]:
            j += 1
        parts.append(files[i] if j == i else f"{files[i]}..{files[j][len(stems[j]):]}")
        i = j + 1
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def file_size(path: Path, dataset: str, url: str) -> int:
    """Size of a file the dataset needs, or one line naming it and the download if it is missing."""
    try:
        return path.stat().st_size
    except OSError:
        raise UserError(f"{dataset}: {path} is missing; download {url} and extract it under data.root") from None


def check_whole_records(path: Path, size: int, record: int, count: int | None, dataset: str, url: str,
                        official: int | None = None) -> int:
    """Check a raw binary file holds whole records (``count`` of them if given); return how many.

    Args:
        official: The record count of the official file, named in the message when ``count``
            is not fixed (fabricated test files hold fewer).

    Raises:
        UserError: ``{path} has {size} bytes, expected N * {record} bytes`` for a truncated or
            padded file, naming the download.
    """
    if size == 0 or size % record or (count is not None and size != count * record):
        if count is not None:
            expected = f"{count:,} * {record:,} = {count * record:,} bytes"
        else:
            expected = f"N * {record:,} bytes" + (f" (the official file: {official:,} * {record:,} = "
                                                  f"{official * record:,})" if official else "")
        raise UserError(f"{dataset}: {path} has {size:,} bytes, expected {expected}; the file is truncated or "
                        f"not the official one: download {url} again")
    return size // record
