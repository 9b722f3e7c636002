"""CUDA / mixed-precision checks; skipped cleanly where no GPU is present (CI)."""

import pytest
import torch

from dmt.engine.loop import FitOptions, TrainState, amp_settings, fit, make_ema, make_sgd
from dmt.models import create_model
from dmt.tasks.segmentation.steps import SegmentationStep

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_amp_segmentation_training_on_cuda():
    device = torch.device("cuda")
    use_amp, dtype = amp_settings(device, True)
    assert use_amp and dtype in (torch.bfloat16, torch.float16)
    torch.manual_seed(0)
    model = create_model("deeplabv2_tiny", 5).to(device)
    state = TrainState(model, make_sgd(model, 0.01, 0.9, 5e-4), make_ema(model, 0.99))
    batches = [{"image": torch.rand(2, 3, 65, 65), "mask": torch.randint(0, 5, (2, 65, 65))} for _ in range(3)]
    saved = []
    fit(SegmentationStep(model), state, iter(batches),
        FitOptions(total_steps=3, base_lr=0.01, schedule="poly", device=device, amp=True, checkpoint_min_seconds=0),
        save=lambda s: saved.append(s.step))
    assert state.step == 3 and saved[-1] == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert next(state.ema.module.parameters()).device.type == "cuda"
