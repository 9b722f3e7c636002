"""SyncBatchNorm that also runs on the CPU (gloo), for tests and CPU clusters.

PyTorch's :class:`torch.nn.SyncBatchNorm` runs on GPUs only (DDP refuses it on CPU modules).
:class:`CPUSyncBatchNorm` computes the same thing with two differentiable all-reduces: the
global per-channel mean, then the global per-channel variance around it (two passes, so no
cancellation), over every process's part of the batch. On CUDA :func:`convert_sync_batchnorm`
uses PyTorch's fused implementation instead.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dmt.engine.distributed import ONE, Processes


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (any device, any backend).

    Outside training, or with one process, it is plain BatchNorm. With ``track_running_stats``
    off (see :func:`dmt.engine.bn.batch_stats_without_update`) it normalises with the global
    batch statistics and leaves the running ones alone.

    Args:
        processes: the processes whose batches it normalises together (its own, like
            :class:`torch.nn.SyncBatchNorm`'s ``process_group``); other arguments as BatchNorm's.
    """

    def __init__(self, *args, processes: Processes = ONE, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.processes = processes

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.processes.size == 1:
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        local = torch.cat([xf.sum(dims), torch.tensor([x.numel() // x.shape[1]], dtype=torch.float32, device=x.device)])
        total = self.processes.all_reduce_sum_autograd(local)
        n = total[-1]
        mean = total[:-1] / n
        var = self.processes.all_reduce_sum_autograd(((xf - mean.view(shape)) ** 2).sum(dims)) / n  # biased, as BN normalises
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device, processes: Processes) -> nn.Module:
    """Replace every BatchNorm of ``module`` by one synchronised over ``processes`` (parameters and buffers kept).

    CUDA gets :class:`torch.nn.SyncBatchNorm`; other devices :class:`CPUSyncBatchNorm`.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group=processes.group)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats, processes=processes)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device, processes))
    return out
