"""Read what a run directory holds for ``dmt report``, without writing anything into it.

Everything is optional except ``results.json``: a run still going, an old run from before a field
was recorded, or one whose stored labels were deleted (``phases.keep_labels: false``) gives what
it has, and :attr:`RunData.notes` says what is missing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dmt.errors import UserError
from dmt.run.rundir import read_run_config

log = logging.getLogger("dmt")

SAMPLES_SHOWN = 4  # stored pseudo labels shown per phase when a run wrote no sample grid


@dataclass
class Samples:
    """One stage's picture: a PNG file (``samples.png``) or pictures built from stored labels."""

    stage: str
    columns: list[str]
    names: list[str]
    png: Path | None = None  # the stage's own samples.png
    pictures: list[np.ndarray] = field(default_factory=list)  # colourised stored labels (fallback)
    note: str = ""


@dataclass
class ValScenes:
    """The run's evaluation-image comparison (``val_scenes.png`` and its ``val_scenes.json``)."""

    png: Path
    info: dict[str, Any]


@dataclass
class RunData:
    """A run directory's results and the records beside them."""

    path: Path
    results: dict[str, Any]
    config: dict[str, Any]
    class_names: list[str]
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] | None  # stage -> tag -> (steps, values)
    samples: dict[str, Samples]
    labels_kept: dict[str, bool]  # phase -> its labels folder still exists
    notes: list[str] = field(default_factory=list)
    val_scenes: ValScenes | None = None  # segmentation runs since the comparison was written

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def task(self) -> str:
        return self.results.get("task", "classification")

    @property
    def stages(self) -> list[dict[str, Any]]:
        return list(self.results.get("stages", []))

    @property
    def phases(self) -> list[dict[str, Any]]:
        return [s for s in self.stages if s.get("kind") == "phase"]


def read_results(run: Path) -> dict[str, Any]:
    """``results.json`` of ``run``; one clear line if it is missing or unreadable."""
    path = run / "results.json"
    if not run.is_dir():
        raise UserError(f"{run}: not a directory (expected a dmt run directory)")
    if not path.is_file():
        raise UserError(f"{path}: not found (not a dmt run directory, or no stage has finished yet)")
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("stages"), list):
        raise UserError(f"{path}: expected an object with a 'stages' list (a dmt results.json)")
    return results


def guess_class_names(results: dict[str, Any], config: dict[str, Any], run: Path) -> list[str]:
    """Class names from a sample grid's record, a stage's model file, the dataset's known names, or ``0 .. C-1``."""
    for s in sorted(run.glob("stages/*/samples.json")):
        try:
            classes = json.loads(s.read_text()).get("classes")
        except (OSError, json.JSONDecodeError):
            continue
        if classes:
            return [str(c) for c in classes]
    for model_file in sorted(run.glob("stages/*/model.safetensors")):
        classes = _model_file_classes(model_file)  # classification models record theirs (a folder's names)
        if classes:
            return classes
    n = 0
    for st in results.get("stages", []):
        m = st.get("metrics", {})
        for key in ("per_class_iou", "thresholds", "kept_per_class", "predicted_per_class"):
            if isinstance(m.get(key), list):
                n = max(n, len(m[key]))
    data = (config.get("data") or {}).get("name")
    if data == "cifar10":
        from dmt.data.cifar import CIFAR10_CLASSES

        return list(CIFAR10_CLASSES)
    if data == "voc":
        from dmt.data.voc import VOC_CLASSES

        return list(VOC_CLASSES)
    if data == "digits" and not n:
        n = 10
    return [str(k) for k in range(n)]


def _model_file_classes(path: Path) -> list[str] | None:
    """The ``classes`` a model file's header records (no tensor is read), or None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get("state", "{}")).get("meta") or {}
    except Exception:  # a file being replaced or damaged: the other sources still name the classes
        return None
    classes = meta.get("classes") if isinstance(meta, dict) else None
    return [str(c) for c in classes] if isinstance(classes, list) and classes else None


def read_curves(run: Path) -> tuple[dict[str, dict[str, tuple[list[int], list[float]]]] | None, str]:
    """Scalars of every ``tb/<stage>`` run (``None`` and a note if TensorBoard cannot be read)."""
    tb = run / "tb"
    if not tb.is_dir():
        return None, "no TensorBoard events (tb/) in this run"
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return None, "the tensorboard package is not installed: training curves are left out"
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for d in sorted(p for p in tb.iterdir() if p.is_dir() and p.name != "per-phase"):
        try:
            acc = EventAccumulator(str(d), size_guidance={"scalars": 0})  # 0: keep every point
            acc.Reload()
            tags = acc.Tags().get("scalars", [])
        except Exception as exc:  # a damaged event file must not sink the page
            log.warning("%s: TensorBoard events unreadable (%s)", d, exc)
            continue
        curves[d.name] = {t: ([e.step for e in acc.Scalars(t)], [e.value for e in acc.Scalars(t)]) for t in tags}
    return curves, ""


def _stored_label_pictures(labels: Path, thresholds: list[float | None] | None, palette: np.ndarray
                           ) -> tuple[list[str], list[np.ndarray]]:
    """The first stored pseudo labels of a phase, thresholded as training used them, colourised."""
    from dmt.tasks.panels import colourise, upscale

    names, pictures = [], []
    for f in sorted(labels.glob("*.npz"))[:SAMPLES_SHOWN]:
        try:
            with np.load(f, allow_pickle=False) as z:
                classes, confidence = z["classes"], z["confidence"].astype(np.float32)
        except (OSError, ValueError, KeyError):
            continue
        kept = classes.copy()
        if thresholds is not None:
            t = np.array([np.inf if v is None else v for v in thresholds], dtype=np.float32)
            within = classes < len(t)
            keep = np.zeros(classes.shape, dtype=bool)
            keep[within] = confidence[within] >= t[classes[within]]
            kept[~keep] = 255
        names.append(f.stem.replace("%2F", "/").replace("%25", "%"))
        pictures.append(upscale(np.concatenate([colourise(classes, palette), colourise(kept, palette)], axis=1), 96))
    return names, pictures


def read_samples(run: Path, results: dict[str, Any], num_classes: int) -> tuple[dict[str, Samples], dict[str, bool]]:
    """Each stage's sample grid, or for phases without one, pictures of the labels still stored."""
    from dmt.tasks.panels import SAMPLES_JSON, SAMPLES_PNG, class_palette

    samples, kept = {}, {}
    palette = class_palette(num_classes)
    for st in results.get("stages", []):
        d = run / "stages" / st["name"]
        if st.get("kind") == "phase":
            kept[st["name"]] = (d / "labels").is_dir()
        if (d / SAMPLES_PNG).is_file():
            try:
                info = json.loads((d / SAMPLES_JSON).read_text())
            except (OSError, json.JSONDecodeError):
                info = {}
            samples[st["name"]] = Samples(st["name"], list(info.get("columns", [])), list(info.get("names", [])),
                                          png=d / SAMPLES_PNG)
        elif kept.get(st["name"]):
            names, pictures = _stored_label_pictures(d / "labels", st.get("metrics", {}).get("thresholds"), palette)
            if pictures:
                samples[st["name"]] = Samples(
                    st["name"], ["teacher's classes", "kept pseudo labels"], names, pictures=pictures,
                    note="this run wrote no sample grid: the stored labels alone (no image, no prediction)")
    return samples, kept


def read_val_scenes(run: Path) -> ValScenes | None:
    """The run's ``val_scenes.png`` with its record, or None (a classification run, an older run)."""
    from dmt.tasks.segmentation.val_scenes import VAL_SCENES_JSON, VAL_SCENES_PNG

    if not (run / VAL_SCENES_PNG).is_file():
        return None
    try:
        info = json.loads((run / VAL_SCENES_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        info = {}
    return ValScenes(run / VAL_SCENES_PNG, info if isinstance(info, dict) else {})


def load_run(path: str | Path) -> RunData:
    """Everything ``dmt report`` shows about one run directory."""
    run = Path(path)
    results = read_results(run)
    config = read_run_config(run) or {}
    notes = []
    class_names = guess_class_names(results, config, run)
    samples, labels_kept = read_samples(run, results, max(len(class_names), 1))
    curves, note = read_curves(run)
    if note:
        notes.append(note)
    return RunData(run, results, config, class_names, curves, samples, labels_kept, notes, read_val_scenes(run))
