"""DMT inside your own PyTorch training loop, with dmt's public API only (no dmt engine, no config).

Two torchvision LR-ASPP models learn to segment synthetic scenes (squares and discs on noise) from
a few labelled ones. Each phase of the curriculum, one model labels the unlabelled scenes for the
other (dmt.max_softmax into a dmt.PseudoLabelStore), the class-balanced thresholds keep the most
confident `ratio` of each class's pixels (dmt.class_balanced_thresholds), and the student trains
on them with DMT's dynamic mutual weights (dmt.dynamic_weights, dmt.weighted_cross_entropy).
Swap in your own models, data and loop: the `dmt.` calls are the method.

    python examples/dmt_in_your_loop.py --steps 100      # a few minutes on a CPU
"""

import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.models.segmentation import lraspp_mobilenet_v3_large

import dmt

NUM_CLASSES = 3  # background, square, disc


def scenes(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy RGB scenes in [0, 1] with a reddish square (class 1) and a bluish disc (class 2), and masks."""
    g = torch.Generator().manual_seed(seed)
    images, masks = torch.rand(n, 3, size, size, generator=g) * 0.5, torch.zeros(n, size, size, dtype=torch.long)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for i in range(n):
        top, left, cy, cx = torch.randint(0, size - size // 3, (4,), generator=g).tolist()
        masks[i, top : top + size // 4, left : left + size // 4] = 1
        masks[i][(yy - cy - size // 6) ** 2 + (xx - cx - size // 6) ** 2 < (size // 8) ** 2] = 2
        for c, colour in ((1, [0.5, 0.1, 0.0]), (2, [0.0, 0.1, 0.5])):
            images[i][:, masks[i] == c] += torch.tensor(colour)[:, None] * (0.6 + 0.4 * torch.rand(1, generator=g))
    return images, masks


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)  # the two models differ by their initialisation, as in DMT
    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    for m in model.modules():  # MobileNetV3's BN momentum 0.01 suits ImageNet-long runs, not a few hundred steps
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    return model


def train(model: torch.nn.Module, labelled: tuple, steps: int, pseudo: tuple | None = None, gamma: float = 5.0) -> None:
    """SGD steps on labelled batches, joined by pseudo-labelled ones weighted by dmt.dynamic_weights."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(steps):
        pick = torch.randint(0, len(labelled[0]), (4,))
        x, target = labelled[0][pick], labelled[1][pick]
        confidence, is_labelled = torch.ones(target.shape), torch.ones(len(pick), dtype=torch.bool)
        if pseudo is not None:  # pseudo-labelled scenes first, then the labelled ones
            more = torch.randint(0, len(pseudo[0]), (4,))
            x, target = torch.cat([pseudo[0][more], x]), torch.cat([pseudo[1][more], target])
            confidence = torch.cat([pseudo[2][more], confidence])
            is_labelled = torch.cat([torch.zeros(len(more), dtype=torch.bool), is_labelled])
        logits = model(x)["out"]
        g = dmt.ramped_gamma(gamma, step, steps)  # near 0 early in a phase, gamma at its end
        weights = dmt.dynamic_weights(logits, target, confidence, g, g, labelled=is_labelled)
        loss = dmt.weighted_cross_entropy(logits, target, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@torch.no_grad()
def pseudo_labels(teacher: torch.nn.Module, images: torch.Tensor, ratio: float, folder: Path) -> tuple:
    """The teacher's labels of ``images``, the top ``ratio`` of each class kept: (images, targets, confidence)."""
    teacher.eval()
    store, names = dmt.PseudoLabelStore(folder), [f"scene{i:05d}" for i in range(len(images))]
    confidence, classes = dmt.max_softmax(teacher(images)["out"])  # float16 and uint8 per pixel
    for name, cls, conf in zip(names, classes, confidence):
        store.write(name, cls, conf)
    thresholds, kept, _ = dmt.class_balanced_thresholds(dmt.histogram_of_store(store, names, NUM_CLASSES), ratio)
    targets, confidences = [], []
    for name in names:
        cls, conf = (torch.from_numpy(a) for a in store.read(name))
        targets.append(dmt.apply_class_thresholds(cls, conf, thresholds).long())  # 255: not kept
        confidences.append(conf.float())
    print(f"  ratio {ratio:.1f}: kept {kept.tolist()} pixels per class")
    return images, torch.stack(targets), torch.stack(confidences)


@torch.no_grad()
def miou(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor) -> float:
    model.eval()
    pred = model(images)["out"].argmax(1)
    ious = [((pred == c) & (masks == c)).sum() / ((pred == c) | (masks == c)).sum().clamp_min(1)
            for c in range(NUM_CLASSES)]
    return float(torch.stack(ious).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps per stage")
    parser.add_argument("--phases", type=int, default=len(dmt.DEFAULT_RATIOS), help="curriculum phases to run")
    parser.add_argument("--size", type=int, default=64, help="scene side in pixels")
    parser.add_argument("--unlabelled", type=int, default=64, help="unlabelled scenes")
    args = parser.parse_args()
    labelled, val = scenes(8, args.size, 0), scenes(16, args.size, 2)
    unlabelled = scenes(args.unlabelled, args.size, 1)[0]
    models = {"a": make_model(1), "b": make_model(2)}
    for name, model in models.items():
        train(model, labelled, args.steps)
        print(f"baseline-{name}: mIoU {miou(model, *val):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        for phase, ratio in enumerate(dmt.DEFAULT_RATIOS[: args.phases], 1):
            # mutual: each model labels the scenes for the other, both before either trains
            pseudo = {student: pseudo_labels(models[teacher], unlabelled, ratio, Path(tmp) / f"phase{phase}-{student}")
                      for student, teacher in (("a", "b"), ("b", "a"))}
            for student in ("a", "b"):
                train(models[student], labelled, args.steps, pseudo[student])
                print(f"phase{phase}-{student}: mIoU {miou(models[student], *val):.3f}")


if __name__ == "__main__":
    main()
