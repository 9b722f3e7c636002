"""The run directory: resolved config, lock, results.json, logs and per-stage folders.

Layout (everything a run writes goes here; datasets are only read)::

    <out>/config.yaml        the resolved config the run started with
    <out>/results.json       metrics of every finished stage (see docs/results.md)
    <out>/log.txt            readable log
    <out>/tb/<stage>/        TensorBoard events
    <out>/splits/            the index / name lists the run used
    <out>/val_samples.npz    segmentation: a few evaluation images and their truth (run_file)
    <out>/stages/<stage>/    state.safetensors (resume), model.safetensors (final), labels ...

With several processes (torchrun) rank 0 alone creates, locks and writes the directory; the
other processes only read it (and write their share of a phase's pseudo labels). An error of
rank 0 while opening (a locked directory, a changed config) reaches every process.
Several machines need the run directory on a file system they all see.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from dmt.atomic import remove_leftovers, write_json, write_text
from dmt.config.loader import config_diff, config_to_dict, drop_removed_keys, dump_config
from dmt.config.schema import ExperimentConfig
from dmt.engine.distributed import ONE, Processes
from dmt.errors import UserError

RESULTS_SCHEMA_VERSION = 1
# Keys that may change between a run and its resumption without changing its results.
RESUMABLE_KEYS = {"device", "data.num_workers", "data.root", "checkpoint_seconds", "checkpoint_min_seconds",
                  "train.compile", "train.skip_nonfinite", "data.check", "data.max_pixels",
                  "train.members_in_parallel"}

log = logging.getLogger("dmt")


def _lookup(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "<absent>"
        node = node[part]
    return node



def read_run_config(run: str | Path) -> dict[str, Any] | None:
    """The ``config.yaml`` a run directory started with, as a plain dict; None if absent or unreadable.

    For tools that only look at a run (``dmt predict``, ``dmt eval``, ``dmt report``): they take
    what they can from it and never refuse to work without it.
    """
    path = Path(run) / "config.yaml"
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return raw if isinstance(raw, dict) else None

class RunDir:
    """A run directory; ``open()`` it before use (lock, config check, logging).

    ``processes``: the job's; its rank 0 opens the directory and writes ``results.json``.
    """

    def __init__(self, path: str | Path, processes: Processes = ONE) -> None:
        self.path = Path(path)
        self.processes = processes
        self._lock_file = None
        self._log_handler: logging.Handler | None = None

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    def stage_dir(self, name: str) -> Path:
        d = self.path / "stages" / name
        d.mkdir(parents=True, exist_ok=True)  # by whichever process asks first (a share's rank 0 too)
        return d

    def splits_dir(self) -> Path:
        d = self.path / "splits"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def tb_dir(self, name: str) -> Path:
        return self.path / "tb" / name

    def run_file(self, name: str) -> Path:
        return self.path / name

    # lifecycle
    def open(self, cfg: ExperimentConfig) -> None:
        """Create or reopen the directory; refuse a config that differs from the recorded one.

        Rank 0 does the work; its error, if any, is raised on every process.
        """
        self.processes.on_main(lambda: self._open_or_explain(cfg))

    def _open_or_explain(self, cfg: ExperimentConfig) -> None:
        try:
            self._open(cfg)
        except OSError as exc:  # read-only file system, permissions, full disk: one line, naming the path
            where = exc.filename or self.path
            raise UserError(f"--out {self.path}: cannot write {where} ({exc.strerror or exc})") from None

    def _open(self, cfg: ExperimentConfig) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._remove_leftovers()
        new = config_to_dict(cfg)
        if self.config_path.exists():
            old = drop_removed_keys(yaml.safe_load(self.config_path.read_text()) or {}, str(self.config_path))
            # keys added to dmt after the run started are fine at their defaults
            defaults = config_to_dict(ExperimentConfig())
            diff = [k for k in config_diff(old, new) if k not in RESUMABLE_KEYS
                    and not (_lookup(old, k) == "<absent>" and _lookup(new, k) == _lookup(defaults, k))]
            if diff and not self._started():
                # nothing was computed with the old config (e.g. it was refused): take the corrected one
                log.info("%s: no stage started yet; replacing its config (changed: %s)", self.config_path,
                         ", ".join(diff))
            elif diff:
                raise UserError(
                    f"{self.config_path}: this run started with a different config (differing keys: "
                    f"{', '.join(diff)}); use another --out or the original settings"
                )
        write_text(self.config_path, dump_config(cfg))
        self._start_log()

    def _remove_leftovers(self) -> None:
        """Clear the temporary files of writers a kill stopped (see :mod:`dmt.atomic`).

        Only with the lock held: then no process of this run writes, and a leftover is never a
        live writer's file. Only what the run writes: the top level (config, results, plot) and
        everything below ``splits/`` and ``stages/`` (checkpoints, model files, pseudo labels,
        thresholds, samples, at any depth). Not ``tb/`` (TensorBoard appends, it does not
        rename), nor any other folder a user put here: ``dmt report``/``dmt predict`` may be
        writing into one right now, under no lock of ours.
        """
        gone = remove_leftovers(self.path)
        for sub in ("splits", "stages"):
            gone += remove_leftovers(self.path / sub, recursive=True)
        if gone:
            log.info("%s: removed %d temporary file(s) of an interrupted write", self.path, gone)

    def _started(self) -> bool:
        """Whether any stage has written anything (a checkpoint, a model, labels) or finished."""
        stages = self.path / "stages"
        if stages.is_dir() and any(p.is_file() for p in stages.rglob("*")):
            return True
        try:
            return bool(json.loads(self.results_path.read_text()).get("stages"))
        except (OSError, ValueError):
            return self.results_path.exists()

    def close(self) -> None:
        if self._log_handler is not None:
            logging.getLogger("dmt").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _lock(self) -> None:
        self._lock_file = open(self.path / ".lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise UserError(f"--out {self.path}: another dmt process is running in this directory") from None

    def _start_log(self) -> None:
        handler = logging.FileHandler(self.path / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logging.getLogger("dmt").addHandler(handler)
        self._log_handler = handler
        log.info("run directory %s (%s)", self.path, " ".join(sys.argv))

    @contextlib.contextmanager
    def share_log(self, leader: bool) -> Iterator[None]:
        """While a share of the processes runs one member's stage: its first process logs too.

        The job's rank 0 writes ``log.txt`` and speaks on stderr; the first process of another
        share (members side by side) appends its stage's lines to the same ``log.txt`` and
        speaks on stderr meanwhile, so the run's story holds both members.
        """
        logger = logging.getLogger("dmt")
        if not leader or self.processes.job_rank == 0:
            yield
            return
        handler = logging.FileHandler(self.path / "log.txt", mode="a")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(min(level, logging.INFO))
        try:
            yield
        finally:
            logger.removeHandler(handler)
            handler.close()
            logger.setLevel(level)

    # results
    def load_results(self) -> dict[str, Any]:
        """The results so far (read by rank 0, the same on every process)."""
        return self.processes.on_main(self._read_results)

    def _read_results(self) -> dict[str, Any]:
        if self.results_path.exists():
            try:
                return json.loads(self.results_path.read_text())
            except json.JSONDecodeError:
                raise UserError(f"{self.results_path}: not valid JSON; move it away to re-run") from None
        return {"schema_version": RESULTS_SCHEMA_VERSION, "stages": []}

    def save_results(self, results: dict[str, Any]) -> None:
        if self.processes.is_main:
            write_json(self.results_path, results)
