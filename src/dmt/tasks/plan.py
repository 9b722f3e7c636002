"""From a config to the ordered list of stages its method needs, and the models (members) they train.

The curriculum is explicit: a plan is a list you can print, and the runner executes it top to
bottom. Each phase names the stage whose model labels its data (the teacher) and the stage its
student starts from (``None``: from scratch or the pretrained initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dmt.config.schema import ExperimentConfig
from dmt.errors import UserError
from dmt.method.curriculum import check_ratios
from dmt.models import is_model, list_models

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


def members(cfg: ExperimentConfig) -> list[str]:
    """The models a run trains side by side: ``["a", "b"]`` for two-model (mutual) methods, else ``[""]``."""
    mutual = cfg.task == "segmentation" and cfg.method in ("dmt", "naive", "flip")
    return ["a", "b"] if mutual else [""]


def make_plan(cfg: ExperimentConfig) -> list[Stage]:
    """The stages of ``cfg.method`` in execution order."""
    try:
        check_ratios(cfg.phases.ratios)
    except ValueError as exc:
        raise UserError(f"config key 'phases.ratios': {exc}") from None
    names = members(cfg)
    mutual = names == ["a", "b"]
    stages = [Stage(f"baseline{_suffix(m)}", "baseline", m) for m in names]
    if cfg.method != "baseline":
        for k, ratio in enumerate(cfg.phases.ratios, start=1):
            for m in names:
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


def name_config_key(text: str, key: str) -> str:
    """A model factory's message about its weights file, in the words of the config.

    The factories name their own arguments (``weights_path``, ``strict_weights``); a user of
    ``dmt run`` knows the config key (``model.weights`` or ``mutual.weights_b``) and ``--smoke``.
    """
    text = text.replace("model option weights_path:", f"config key {key!r}:")
    text = text.replace("pass weights_path=", f"set {key}=").replace("weights_path=", f"{key}=")
    text = text.replace("(strict_weights=False)", "(--smoke)")
    return text if key in text else f"config key {key!r}: {text}"


def member_init(cfg: ExperimentConfig, member: str | None) -> tuple[str, str, str | None]:
    """``(config key, init, weights file)`` of a model's pretrained initialisation.

    Model B of two-model methods has its own (``mutual.init_b`` / ``mutual.weights_b``) unless
    both start alike (``mutual.dms``); every other model uses ``model.init`` / ``model.weights``.
    """
    if member == "b" and not cfg.mutual.dms:
        return "mutual.weights_b", cfg.mutual.init_b, cfg.mutual.weights_b
    return "model.weights", cfg.model.init, cfg.model.weights


def member_model(cfg: ExperimentConfig, member: str | None) -> tuple[str, dict]:
    """``(registered model name, factory arguments)`` of a member's network.

    Model B of two-model methods may be another network (``mutual.name_b`` / ``mutual.kwargs_b``,
    null: as model A); every other model is ``model.name`` with ``model.kwargs``.

    Raises:
        UserError: ``mutual.name_b`` is not a registered model.
    """
    if member == "b" and not cfg.mutual.dms:
        name = cfg.mutual.name_b if cfg.mutual.name_b is not None else cfg.model.name
        kwargs = cfg.mutual.kwargs_b if cfg.mutual.kwargs_b is not None else cfg.model.kwargs
        if cfg.mutual.name_b is not None and not is_model(name):
            raise UserError(f"config key 'mutual.name_b': unknown model {name!r}; known: {', '.join(list_models())}")
        return name, dict(kwargs)
    return cfg.model.name, dict(cfg.model.kwargs)


def best_stage(stages: Sequence[dict[str, Any]], key: str, prefix: str) -> tuple[str, float] | None:
    """``(name, score)`` of the best-scoring finished stage named ``prefix`` or ``prefix-<member>``
    (``results.json``'s stage entries), or None; a tie goes to the first (model a)."""
    scored = [(s["name"], s["metrics"][key]) for s in stages if s["name"].split("-")[0] == prefix
              and isinstance((s.get("metrics") or {}).get(key), (int, float))]
    return max(scored, key=lambda t: t[1]) if scored else None
