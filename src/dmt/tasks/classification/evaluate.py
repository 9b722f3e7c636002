"""Evaluation and labelling passes (no gradients, eval-mode BN)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from dmt.engine.distributed import ONE, Processes
from dmt.engine.accel import inference_layout
from dmt.engine.batches import eval_loader
from dmt.engine.loop import amp_settings
from dmt.engine.progress import Display


@torch.no_grad()
def predict_probabilities(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
                          amp: bool = False, num_workers: int = 0, description: str = "label",
                          channels_last: bool = False, display: Display = Display()) -> torch.Tensor:
    """Softmax probabilities ``N x C`` (float32, on the CPU) for every item, in dataset order.

    ``channels_last``: model and inputs in NHWC order (``train.channels_last``); ``display``: how
    progress shows (with several processes: rank 0 alone).
    """
    model.eval()
    layout = inference_layout(model, channels_last)
    use_amp, dtype = amp_settings(device, amp)
    out: torch.Tensor | None = None
    done = 0
    loader = eval_loader(dataset, batch_size, num_workers, pin_memory=device.type == "cuda")
    with display(description, len(loader)) as bar:
        for images, *_ in loader:
            with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                logits = model(layout(images.to(device, non_blocking=True)))
            probs = logits.float().softmax(dim=1).cpu()
            if out is None:
                # one block for the whole set, filled in place: a small piece kept per batch would sit
                # between the batches' freed memory and keep the allocator from reusing it (measured:
                # the peak then grew by tens of MB over 100,000 images), and a final cat doubles it
                out = torch.empty(len(dataset), probs.shape[1], dtype=probs.dtype)  # type: ignore[arg-type]
            out[done:done + len(probs)] = probs
            done += len(probs)
            bar.advance()
    return out[:done] if out is not None else torch.empty(0)


def classification_accuracy(model: nn.Module, dataset: Dataset, labels: torch.Tensor, batch_size: int,
                            device: torch.device, amp: bool = False, num_workers: int = 0,
                            description: str = "eval", channels_last: bool = False,
                            processes: Processes = ONE, display: Display | None = None) -> float:
    """Top-1 accuracy as a fraction in [0, 1] (``labels`` in dataset order).

    Under several ``processes`` each passes its share of the set; the result is the whole set's.
    ``display``: how progress shows (default: rank 0 of ``processes``, without the run's clock).
    """
    probs = predict_probabilities(model, dataset, batch_size, device, amp, num_workers, description, channels_last,
                                  display or Display(processes.shows_progress()))
    correct = (probs.argmax(1) == torch.as_tensor(labels)).sum() if len(labels) else torch.tensor(0)
    # with several processes each scored its share: correct counts and sizes add up exactly
    counts = processes.all_reduce_sum(torch.tensor([int(correct), len(labels)], dtype=torch.int64))
    return float(counts[0]) / float(counts[1]) if int(counts[1]) else float("nan")


def pseudo_statistics(pseudo_probs: torch.Tensor, true_labels: torch.Tensor, unlabelled: int) -> dict[str, float]:
    """What a phase records about its kept pseudo labels.

    Args:
        pseudo_probs: the teacher's probabilities of the kept images, ``K x C``.
        true_labels: their true labels, ``(K,)``; -1 where an image has none (a folder's
            unlabelled images, STL-10's extra ones).
        unlabelled: the size of the unlabelled set they were kept from.

    Returns:
        ``pseudo_kept``, ``pseudo_share`` (of the unlabelled set), ``pseudo_accuracy`` (the share
        of kept images whose pseudo label equals the true label, over the kept images that *have*
        a true label; absent when none has one), ``pseudo_min_confidence`` (nan when none is kept)
        and, when some kept images have no true label, ``pseudo_scored``: how many have one.
    """
    kept = len(pseudo_probs)
    scored = true_labels >= 0
    out: dict[str, float] = {"pseudo_kept": int(kept), "pseudo_share": kept / max(unlabelled, 1)}
    if bool(scored.any()):
        right = pseudo_probs.argmax(1)[scored] == true_labels[scored]
        out["pseudo_accuracy"] = float(right.float().mean())
    out["pseudo_min_confidence"] = float(pseudo_probs.max(1).values.min()) if kept else float("nan")
    if not bool(scored.all()):
        out["pseudo_scored"] = int(scored.sum())
    return out
