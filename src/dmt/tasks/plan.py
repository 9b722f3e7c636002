"""From a config to the ordered list of stages its method needs.

The curriculum is explicit: a plan is a list you can print, and the runner executes it top to
bottom. Each phase names the stage whose model labels its data (the teacher) and the stage its
student starts from (``None``: from scratch or the pretrained initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dmt.config.schema import ExperimentConfig
from dmt.method.curriculum import check_ratios
from dmt.errors import UserError

StageKind = Literal["baseline", "phase", "oracle"]


@dataclass(frozen=True)
class Stage:
    """One unit of work in the run directory; finished stages are skipped on resume."""

    name: str  # "baseline", "phase3", "oracle"; with a member suffix ("phase3-a") for two models
    kind: StageKind
    member: str = ""  # "" for one model, "a" / "b" for mutual training
    index: int = 0  # phase number (1-based), 0 otherwise
    ratio: float = 1.0  # curriculum ratio of a phase
    teacher: str | None = None  # stage whose final model labels this phase's data
    init_from: str | None = None  # stage whose final weights the student starts from


def _suffix(member: str) -> str:
    return f"-{member}" if member else ""


def make_plan(cfg: ExperimentConfig) -> list[Stage]:
    """The stages of ``cfg.method`` in execution order."""
    try:
        check_ratios(cfg.phases.ratios)
    except ValueError as exc:
        raise UserError(f"config key 'phases.ratios': {exc}") from None
    mutual = cfg.task == "segmentation" and cfg.method in ("dmt", "naive", "flip")
    members = ["a", "b"] if mutual else [""]
    stages = [Stage(f"baseline{_suffix(m)}", "baseline", m) for m in members]
    if cfg.method != "baseline":
        for k, ratio in enumerate(cfg.phases.ratios, start=1):
            for m in members:
                # mutual: A learns from B's previous model and vice versa; otherwise self-training
                teacher_member = ({"a": "b", "b": "a"}[m]) if mutual else m
                prev = "baseline" if k == 1 else f"phase{k - 1}"
                fine_tune = not cfg.phases.from_scratch
                stages.append(Stage(
                    name=f"phase{k}{_suffix(m)}", kind="phase", member=m, index=k, ratio=ratio,
                    # "online" stores no labels: the student labels each batch itself
                    teacher=None if cfg.method == "online" else f"{prev}{_suffix(teacher_member)}",
                    init_from=f"{prev}{_suffix(m)}" if fine_tune else None,
                ))
    if cfg.oracle.enabled:
        stages.append(Stage("oracle", "oracle"))
    return stages
