"""Work run by every process of a two-process (gloo, CPU) job, started by ``torchrun``.

``python -m torch.distributed.run --nproc-per-node 2 workers.py CASE OUT [ARGS]``; without
torchrun the same function runs as one process (the reference). Results go to files in OUT.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from dmt.engine import distributed as dist
from dmt.engine.batches import batch_slices
from dmt.engine.loop import FitOptions, TrainState, fit, make_sgd
from dmt.tasks.segmentation.steps import SegmentationStep
from dmt.tasks.training import convert_sync_bn, training_module

torch.set_num_threads(1)


def tiny_segmenter(norm: str) -> nn.Module:
    """conv - (BN) - ReLU - conv, 3 classes; the same weights on every process."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1)]
    if norm != "none":
        layers.append(nn.BatchNorm2d(8))
    layers += [nn.ReLU(), nn.Conv2d(8, 3, 1)]
    return nn.Sequential(*layers)


def global_phase_batch() -> dict[str, torch.Tensor]:
    """3 pseudo-labelled + 1 labelled crops of 3 x 10 x 10, some targets ignored (255)."""
    g = torch.Generator().manual_seed(1)
    pseudo_mask = torch.randint(0, 3, (3, 10, 10), generator=g)
    pseudo_mask[torch.rand(3, 10, 10, generator=g) < 0.3] = 255
    mask = torch.randint(0, 3, (1, 10, 10), generator=g)
    mask[0, :2] = 255
    return {"pseudo_image": torch.randn(3, 3, 10, 10, generator=g), "pseudo_mask": pseudo_mask,
            "pseudo_confidence": torch.rand(3, 10, 10, generator=g), "image": torch.randn(1, 3, 10, 10, generator=g),
            "mask": mask}


def my_share(batch: dict[str, torch.Tensor], job: dist.Processes) -> dict[str, torch.Tensor]:
    """This process's slice of the concatenated [pseudo, labelled] batch (dmt's split)."""
    take_p, take_l = batch_slices([3, 1], job.size, job.rank)
    empty_p, empty_l = (0, 0), (0, 0)
    a, b = take_p or empty_p
    c, d = take_l or empty_l
    return {"pseudo_image": batch["pseudo_image"][a:b], "pseudo_mask": batch["pseudo_mask"][a:b],
            "pseudo_confidence": batch["pseudo_confidence"][a:b], "image": batch["image"][c:d],
            "mask": batch["mask"][c:d]}


def case_step(out: Path) -> None:
    """One DMT segmentation step (dynamic weights) for each normalisation; parameters saved."""
    job = dist.init_from_env("cpu")
    for norm in ("syncbn", "none", "bn"):
        model = convert_sync_bn(tiny_segmenter(norm), norm == "syncbn", torch.device("cpu"), job)
        state = TrainState(model, make_sgd(model, 0.5, 0.9, 1e-4))
        step = SegmentationStep(training_module(model, torch.device("cpu"), job), gamma1=2.0, gamma2=3.0,
                                processes=job)
        opts = FitOptions(total_steps=2, base_lr=0.5, schedule="constant", log_every=1, amp=False)
        batch = my_share(global_phase_batch(), job)
        fit(step, state, [batch, batch], opts, save=lambda s: None, processes=job)
        if job.is_main:
            tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
                       if v.is_floating_point()}
            save_file(tensors, str(out / f"{norm}-world{job.size}.safetensors"))
        if norm == "syncbn":  # the dynamic-weight pass: global batch statistics, running ones untouched
            from dmt.engine.bn import batch_stats_without_update

            before = [b.clone() for b in model.buffers()]
            with torch.no_grad(), batch_stats_without_update(step.model):
                step.model(batch["pseudo_image"] if len(batch["pseudo_image"]) else batch["image"])
            untouched = all(torch.equal(a, b) for a, b in zip(before, model.buffers()))
            (out / f"weight-pass-untouched-rank{job.rank}-world{job.size}").write_text(str(untouched))
    dist.shutdown(job)


def case_label(out: Path, run_dir: str) -> None:
    """The labelling pass of phase1-a from a finished run's teacher, into ``out``."""
    import shutil

    import yaml

    from dmt.config.loader import config_from_dict
    from dmt.run.rundir import RunDir
    from dmt.tasks.context import StageContext
    from dmt.tasks.plan import make_plan
    from dmt.tasks.segmentation.runner import SegmentationRunner

    with dist.joined("cpu") as job:
        src = Path(run_dir)
        cfg = config_from_dict(yaml.safe_load((src / "config.yaml").read_text()))
        if job.is_main:
            (out / "stages" / "baseline-b").mkdir(parents=True, exist_ok=True)
            shutil.copy(src / "stages" / "baseline-b" / "model.safetensors", out / "stages" / "baseline-b")
        job.barrier()
        runner = SegmentationRunner(StageContext(cfg, RunDir(out, job), torch.device("cpu"), job))
        stage = next(s for s in make_plan(cfg) if s.name == "phase1-a")
        _, info = runner._pseudo_labels(stage)
        info.pop("thresholds_tensor")
        if job.is_main:
            (out / "info.json").write_text(json.dumps(info, sort_keys=True))


def case_dead_rank(out: Path) -> None:
    """Rank 1 dies right after joining; rank 0 must not wait for it forever."""
    job = dist.init_from_env("cpu")
    if job.rank == 1:
        os._exit(3)
    job.barrier()  # times out (DMT_DIST_TIMEOUT) instead of hanging
    (out / "passed-barrier").write_text("unexpected")


def case_shares(out: Path) -> None:
    """The job split into shares of one process: the two objects used alternately, no global state."""
    with dist.joined("cpu") as job:
        share = job.split(job.size)
        mine = torch.tensor([float(job.rank + 1)])
        seen = {"job": [job.rank, job.size, job.is_main], "share": [share.rank, share.size, share.is_main],
                "job_sum": job.all_reduce_sum(mine).item(), "share_sum": share.all_reduce_sum(mine).item(),
                "job_sum_again": job.all_reduce_sum(mine).item(), "job_ranks": job.all_gather_objects(job.rank),
                "share_ranks": share.all_gather_objects(job.rank)}
        # the differentiable sum: every process's loss weighs the sum by (rank + 1); the gradient of
        # each input is the sum of those weights over the processes (1 + 2 = 3 on two processes)
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        (job.all_reduce_sum_autograd(x) * float(job.rank + 1)).sum().backward()
        seen["grad"] = x.grad.tolist()
        (out / f"shares-rank{job.rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    case, out, *rest = sys.argv[1:]
    globals()[f"case_{case}"](Path(out), *rest)
