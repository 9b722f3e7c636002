"""Step functions compose the method functions as the paper says (checked by hand-made cases)."""

import numpy as np
import pytest
import torch
from torch import nn

from dmt.engine.batches import mix_seed
from dmt.method.losses import mixup_cross_entropy, weighted_cross_entropy
from dmt.method.mixup import mix, random_permutation, sample_lambda
from dmt.method.weights import confidence_weights, dynamic_weights
from dmt.tasks.classification.steps import DynamicMixupStep, SupervisedMixupStep
from dmt.tasks.segmentation.steps import SegmentationStep
from dmt.tasks.stats import StatTotals


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.bn(x))


def _cls_batch():
    g = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(6, 3, generator=g) * 2, dim=1)
    return {"pseudo_images": torch.randn(6, 4, generator=g), "pseudo_probs": probs,
            "labelled_images": torch.randn(2, 4, generator=g), "labels": torch.tensor([0, 2])}


def test_dynamic_mixup_step_matches_its_definition():
    model = BNNet().train()
    batch = _cls_batch()
    step, seed = 7, 11
    ref_model = BNNet().train()
    x = torch.cat([batch["pseudo_images"], batch["labelled_images"]])
    y = torch.cat([batch["pseudo_probs"].argmax(1), batch["labels"]])
    conf = torch.cat([batch["pseudo_probs"].max(1).values, torch.ones(2)])
    labelled = torch.tensor([False] * 6 + [True] * 2)
    # weights from the un-mixed batch with batch statistics (a train-mode pass on a copy)
    with torch.no_grad():
        w = dynamic_weights(BNNet().train()(x), y, conf, labelled, 4.0, 4.0)
    lam = sample_lambda(0.75, np.random.default_rng(mix_seed(seed, step, 0)))
    perm = random_permutation(8, torch.Generator().manual_seed(mix_seed(seed, step, 1)))
    expected = mixup_cross_entropy(ref_model(mix(x, lam, perm)), y, y[perm], lam, mix(w, lam, perm))

    totals = StatTotals()
    out = DynamicMixupStep(model, gamma1=4.0, gamma2=4.0, ramp=False, total_steps=10, alpha=0.75, seed=seed,
                           totals=totals)(batch, step)
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    # BN running statistics moved exactly once (by the training forward), as in ref_model
    assert torch.allclose(model.bn.running_mean, ref_model.bn.running_mean)
    assert int(model.bn.num_batches_tracked) == 1
    assert totals.count == 6 and 0 <= totals.means()["mean_weight"] <= 1


def test_gamma_zero_is_curriculum_labelling():
    model = BNNet().train()
    batch = _cls_batch()
    out = DynamicMixupStep(model, gamma1=0.0, gamma2=0.0, ramp=True, total_steps=10, alpha=0.0, seed=0,
                           totals=StatTotals())(batch, 0)
    ref = BNNet().train()
    x = torch.cat([batch["pseudo_images"], batch["labelled_images"]])
    y = torch.cat([batch["pseudo_probs"].argmax(1), batch["labels"]])
    assert out["loss"].item() == pytest.approx(nn.functional.cross_entropy(ref(x), y).item(), rel=1e-5)


def test_supervised_step_without_mixup_is_plain_ce():
    model = BNNet().train()
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    out = SupervisedMixupStep(model, alpha=0.0, seed=0)((x, y), 0)
    assert out["loss"].item() == pytest.approx(nn.functional.cross_entropy(BNNet().train()(x), y).item(), rel=1e-5)


class FixedLogits(nn.Module):
    """A 'segmentation model' returning given logits (plus a parameter to keep autograd happy)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.zero = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.logits[: x.shape[0]] + self.zero


def _seg_batch():
    g = torch.Generator().manual_seed(3)
    return {"pseudo_image": torch.zeros(2, 3, 2, 2), "image": torch.zeros(1, 3, 2, 2),
            "pseudo_mask": torch.tensor([[[0, 1], [2, 255]], [[1, 1], [0, 2]]]),
            "pseudo_confidence": torch.rand(2, 2, 2, generator=g),
            "mask": torch.tensor([[[2, 0], [255, 1]]])}, torch.randn(3, 3, 2, 2, generator=g) * 2


@pytest.mark.parametrize("weighting", ["dynamic", "confidence", "cbst"])
def test_segmentation_step_weights(weighting):
    batch, logits = _seg_batch()
    target = torch.cat([batch["pseudo_mask"], batch["mask"]])
    conf = torch.cat([batch["pseudo_confidence"], torch.ones(1, 2, 2)])
    labelled = torch.tensor([False, False, True])
    if weighting == "dynamic":
        w = dynamic_weights(logits, target, conf, labelled, 5.0, 5.0)
        step = SegmentationStep(FixedLogits(logits), weighting="dynamic", gamma1=5.0, gamma2=5.0)
    elif weighting == "confidence":
        w = confidence_weights(logits, target, labelled, 5.0)
        step = SegmentationStep(FixedLogits(logits), weighting="confidence", naive_gamma=5.0)
    else:
        w = (target != 255).float()
        step = SegmentationStep(FixedLogits(logits), weighting="dynamic", gamma1=0.0, gamma2=0.0)
    out = step(batch, 0)
    assert out["loss"].item() == pytest.approx(weighted_cross_entropy(logits, target, w).item(), rel=1e-6)


def test_segmentation_step_online_labels_itself():
    batch, logits = _seg_batch()
    logits[0, 1] = 10.0  # image 0: confidently class 1 everywhere
    out = SegmentationStep(FixedLogits(logits), weighting="online", online_threshold=0.9)(
        {k: v for k, v in batch.items() if not k.startswith("pseudo_") or k == "pseudo_image"}, 0)
    probs = logits[:2].softmax(1)
    pseudo = torch.where(probs.max(1).values > 0.9, probs.argmax(1), torch.full((2, 2, 2), 255))
    target = torch.cat([pseudo, batch["mask"]])
    assert out["loss"].item() == pytest.approx(
        weighted_cross_entropy(logits, target, torch.ones(3, 2, 2)).item(), rel=1e-6)
    assert out["pseudo_share"] >= 0.5


def test_supervised_segmentation_upsamples_logits():
    class Coarse(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.w * torch.zeros(x.shape[0], 3, x.shape[2] // 2, x.shape[3] // 2)

    out = SegmentationStep(Coarse())({"image": torch.zeros(1, 3, 4, 4), "mask": torch.zeros(1, 4, 4).long()}, 0)
    assert out["loss"].item() == pytest.approx(np.log(3), rel=1e-6)
