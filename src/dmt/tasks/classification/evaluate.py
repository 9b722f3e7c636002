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
    out = []
    loader = eval_loader(dataset, batch_size, num_workers, pin_memory=device.type == "cuda")
    with display(description, len(loader)) as bar:
        for images, *_ in loader:
            with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                logits = model(layout(images.to(device, non_blocking=True)))
            out.append(logits.float().softmax(dim=1).cpu())
            bar.advance()
    return torch.cat(out) if out else torch.empty(0)


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
