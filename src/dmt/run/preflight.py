"""Pre-flight check: find bad data and bad weights files before the first stage, not hours in.

Run by :func:`dmt.run.runner.run_stages` before the run directory is touched, and
alone by ``dmt check`` (the weights files: :mod:`dmt.run.preflight_weights`). It reads nothing
it does not have to (``data.check``):

* ``headers`` (default): every listed image and mask exists and its header opens (PIL reads
  the size without decoding the pixels), each mask has its image's size and a single-channel
  mode; every weights file the config names opens (tensors only, no pickle) and fits the model.
* ``full``: as ``headers``, and every image and mask is decoded and its values checked
  (truncated files, mask values outside the classes): what training would meet, all at once.
* ``none``: nothing (problems then surface when a file is first read).

Under ``--smoke`` (and ``dmt check --smoke``) ``headers`` also decodes every listed mask and checks
its values, one mask in memory at a time: the smoke trains on a few images, but what it promises,
that the set-up will not fail later on a file, covers every mask of the real run. Masks are small
(a palette PNG decodes in about a millisecond); images keep their header check.

Classification arrays (CIFAR-10, the digits) are read whole when a run starts anyway; of
classification data only your own images (``data.name: imagefolder``) are checked: the layout
(an empty class folder, an image outside any class folder, a ``val/`` or ``test/`` class that
``labelled/`` lacks, a list-file row with an unknown class or a missing file), every image
(``headers``: its header opens, within ``data.max_pixels``; ``full``: it is read exactly as
training reads it, so a truncated file fails here) and that no file is both labelled and
unlabelled. *The same file* is the same bytes, whatever the names: files of equal size in
both sets are compared by SHA-256 (only those are hashed), so a copy, a hard or symbolic link,
or a list naming one file twice is found in either mode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from dmt.config.schema import ExperimentConfig
from dmt.data.images import image_size
from dmt.data.segmentation import SegItem, SegSource, load_pair, read_mask
from dmt.errors import UserError
from dmt.run.preflight_weights import check_weights, held_back_info
from dmt.tasks.plan import member_model, members

if TYPE_CHECKING:  # the processes' type only: preflight itself needs no torch.distributed
    from dmt.engine.distributed import Processes

log = logging.getLogger("dmt")

@dataclass
class PreflightReport:
    """What was checked (for ``dmt check`` to print)."""

    mode: str
    task: str = "segmentation"
    images: int = 0
    masks: int = 0
    weights: tuple[str, ...] = ()
    # classification image folders: (set, images) in order, e.g. (("labelled", 40), ("unlabelled", 2950))
    sets: tuple[tuple[str, int], ...] = ()
    classes: int = 0
    mask_values: bool = False  # every mask decoded and its values checked (full, or --smoke)

    def summary(self) -> str:
        if self.mode == "none":
            return "data.check is none: nothing checked"
        if self.task != "segmentation" and not self.sets:
            weights = f"weights files: {', '.join(self.weights)}" if self.weights else "no weights file"
            return f"ok: {weights} (the {self.task} dataset's files are checked as a run reads them)"
        what = "decoded" if self.mode == "full" else "headers read"
        weights = f"; weights files: {', '.join(self.weights)}" if self.weights else ""
        if self.sets:
            (first, n), *rest = self.sets
            mode = " (benchmark mode)" if first == "training" else ""
            files = ", ".join([f"{n} {first} images in {self.classes} classes{mode}", *[f"{m} {s}" for s, m in rest]])
            return f"ok: {files} ({what}){weights}"
        if self.mode != "full" and self.mask_values:
            what = "headers read, every mask's values checked"
        files = f"{self.images} images and {self.masks} masks ({what})"
        return f"ok: {files}{weights}"


def preflight(cfg: ExperimentConfig, read_files: bool = True) -> PreflightReport:
    """Check the data and weights files ``cfg`` will use; raise the first problem as one line.

    Args:
        read_files: ``False`` only applies the split protocol (which, with several processes,
            every process must do, as it meets collectives); rank 0 reads the files.

    Raises:
        UserError: naming the file (and config key) at fault.
    """
    report = PreflightReport(cfg.data.check, cfg.task)
    for member in members(cfg):
        member_model(cfg, member)  # an unknown mutual.name_b is refused whatever data.check says
    if cfg.data.check == "none":
        return report
    if cfg.task != "segmentation":
        if cfg.data.name == "imagefolder" and read_files:
            check_imagefolder(cfg, report)  # its weights too
        elif read_files:
            # a timm model's weights file (or hub file) fits whatever the classes: its classifier is
            # dropped, so no dataset is read to count them
            report.weights = tuple(check_weights(cfg, num_classes=2))
        return report
    items, source = _segmentation_items(cfg)
    if not read_files:
        return report
    report.mask_values = cfg.smoke or cfg.data.check == "full"
    for item in items:
        check_item(item, source, full=cfg.data.check == "full", mask_values=cfg.smoke)
        report.images += 1
        report.masks += item.mask is not None
    report.weights = tuple(check_weights(cfg, source.num_classes))
    return report


def _segmentation_items(cfg: ExperimentConfig) -> tuple[list[SegItem], SegSource]:
    """Every item a run of ``cfg`` reads (labelled, unlabelled, held-out, val), each once.

    A ``--smoke`` run trains on a few images of each list, but its check covers the full lists
    the real run will read: a set-up that passes ``--smoke`` does not fail later on a file.
    """
    from dmt.tasks.segmentation.data import load_segmentation_data

    if cfg.smoke and cfg.data.limit:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, limit=0))
    # the split protocol writes the lists it chose; here they go to a scratch folder
    with tempfile.TemporaryDirectory(prefix="dmt-check-") as scratch, held_back_info():
        data = load_segmentation_data(cfg, Path(scratch), members(cfg))
    seen: dict[tuple[str, bool], SegItem] = {}
    groups = [*data.labelled.values(), *data.heldout.values(), data.unlabelled, data.val]
    if cfg.oracle.enabled:
        groups.append(data.all_train)
    for group in groups:
        for item in group:
            seen.setdefault((item.name, item.mask is not None), item)
    return list(seen.values()), data.source


def check_item(item: SegItem, source: SegSource, full: bool = False, mask_values: bool = False) -> None:
    """One item's files: headers readable and sizes matching (``full``: decoded and values checked;
    ``mask_values``: the image's header and the mask decoded, its values checked)."""
    if full:
        load_pair(item, source, with_mask=item.mask is not None)
        return
    if not isinstance(item.image, Path):  # generated in memory (digit scenes): nothing to read
        return
    size, _ = image_size(item.image, "image", source.max_pixels)
    if item.mask is None or not isinstance(item.mask, Path):
        return
    mask_size, mode = image_size(item.mask, "mask", source.max_pixels)
    if mode not in ("P", "L", "1") and not mode.startswith("I"):
        raise UserError(f"mask {item.mask} has image mode {mode}; expected a single-channel (palette or grey) "
                        "PNG whose pixel values are class indices, 255 = ignore")
    if mask_size != size:
        raise UserError(f"mask {item.mask} is {mask_size[0]}x{mask_size[1]} but image {item.image} is "
                        f"{size[0]}x{size[1]} (HxW); they must match")
    if mask_values:
        check_mask_values(item.mask, source)


def check_mask_values(mask: Path, source: SegSource) -> None:
    """Decode one mask and refuse values that are neither a class (after ``source.label_map``) nor
    ignore, in the words training would use; memory is this one mask.

    Raises:
        UserError: one line naming the mask file, its values at fault and the classes.
    """
    raw = read_mask(mask, mask.stem, source.max_pixels)
    counts = np.bincount(raw.ravel(), minlength=256)  # one pass over the pixels; a 256-entry table out
    if source.label_map is not None:  # several raw ids may map to one train id: count per train id
        counts = np.bincount(source.label_map, weights=counts, minlength=256)
    allowed = np.zeros(counts.size, dtype=bool)
    allowed[: source.num_classes] = True
    allowed[source.ignore_index] = True
    bad = np.flatnonzero((counts > 0) & ~allowed)
    if bad.size:
        raise UserError(f"mask {mask} has values {bad[:10].tolist()} outside 0..{source.num_classes - 1} and "
                        f"{source.ignore_index} (ignore); {source.name} has {source.num_classes} classes")


def check_imagefolder(cfg: ExperimentConfig, report: PreflightReport) -> None:
    """Your own classification images (see the module docstring); fills ``report``'s counts.

    Raises:
        UserError: the first mistake, one line naming the file (or folder, list line, key).
    """
    from dmt.data.class_folders import load_imagefolder
    from dmt.data.image_files import read_rgb

    data = load_imagefolder(cfg.data)  # the layout and list files
    train = data.train
    if data.labelled is None:
        sets = [("training", train.paths)]
    else:
        sets = [("labelled", [train.paths[i] for i in data.labelled]),
                ("unlabelled", [train.paths[i] for i in data.unlabelled])]
    sets += [(name, s.paths) for name, s in (("val", data.val), ("test", data.test)) if s is not None]
    for _, paths in sets:
        for path in paths:
            if cfg.data.check == "full":
                read_rgb(path, train.size, train.max_pixels)  # as training reads it
            else:
                image_size(path, "image", train.max_pixels)
    if data.labelled is not None and cfg.oracle.enabled:  # before the run directory, not at the runner's start
        raise UserError("config key 'oracle.enabled': the oracle trains on the true labels of every training image, "
                        f"but the {len(data.unlabelled)} images of unlabelled/ have none; set oracle.enabled=false "
                        "(benchmark mode, train/<class>/..., has an oracle)")
    if data.labelled is not None:
        shared = same_file(sets[0][1], sets[1][1])
        if shared:
            raise UserError(f"labelled image {shared[0]} and unlabelled image {shared[1]} are the same file (same "
                            "bytes); an image is labelled or unlabelled, not both: remove one of them")
    report.sets = tuple((name, len(paths)) for name, paths in sets)
    report.classes = len(data.classes)
    report.weights = tuple(check_weights(cfg, len(data.classes)))


def same_file(first: list[Path], second: list[Path]) -> tuple[Path, Path] | None:
    """The first pair ``(a in first, b in second)`` with the same bytes, or ``None``.

    Only files whose size occurs in both lists are read (SHA-256, in chunks): a stat per file,
    plus a read of the few that could match.
    """
    by_size: dict[int, list[Path]] = {}
    for a in first:
        by_size.setdefault(_file_size(a), []).append(a)
    digests: dict[Path, bytes] = {}

    def digest(path: Path) -> bytes:
        if path not in digests:
            try:
                with open(path, "rb") as f:
                    digests[path] = hashlib.file_digest(f, "sha256").digest()
            except OSError as e:
                raise UserError(f"cannot read image {path}: {e.strerror or e}") from None
        return digests[path]

    for b in second:
        for a in by_size.get(_file_size(b), ()):
            if a == b or digest(a) == digest(b):
                return a, b
    return None


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise UserError(f"cannot read image {path}: {e.strerror or e}") from None


def preflight_all(cfg: ExperimentConfig, processes: Processes) -> list[logging.LogRecord]:
    """:func:`preflight` in a job of one or several ``processes``: rank 0 reads, every process raises.

    Returns the warnings it found (``--smoke``: each missing weights file), held back so that the
    caller logs them once the run directory's ``log.txt`` is open, where a run's story is read; if
    the check fails they are printed at once, before its error.
    """
    with _warnings_held() as held:
        _preflight_all(cfg, processes)
    return held


@contextmanager
def _warnings_held() -> Iterator[list[logging.LogRecord]]:
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            held.append(record)
            return False
        return True

    log.addFilter(hold)
    try:
        yield held
    except BaseException:
        log.removeFilter(hold)
        for record in held:
            log.handle(record)
        raise
    log.removeFilter(hold)


def _preflight_all(cfg: ExperimentConfig, processes: Processes) -> None:
    if processes.size == 1:
        preflight(cfg)
        return
    problem = None
    try:
        preflight(cfg, read_files=processes.is_main)
    except UserError as exc:
        problem = str(exc)
    problem = processes.broadcast_object(problem)  # rank 0's finding
    if problem is not None:
        err = UserError(problem)
        err.shared = True  # type: ignore[attr-defined]  (printed once, by rank 0)
        raise err
