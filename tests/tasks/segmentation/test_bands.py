"""Memory bounded by a window, not by the image: band-by-band windowed inference (issue 19).

``window_bands`` must give exactly ``window_logits``' values while holding only a few rows of
windows; labelling and evaluation of an image larger than ``max_side`` go through it; and a child
process labelling a large image peaks far below what one full-size map of every class would take.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from dmt.data.segmentation import SegItem, SegmentationDataset, SegSource
from dmt.data.transforms import seg_eval_transform
from dmt.method.confidence import max_softmax
from dmt.tasks.segmentation.inference import evaluate_segmentation, inference_window, window_bands, window_logits
from dmt.tasks.segmentation.labelling import label_images

CPU = torch.device("cpu")


class Net(nn.Module):
    """Strided convolution + bilinear-friendly low-resolution logits, like DeepLab's 1/8 output."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, classes, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _dataset(images: list[np.ndarray], masks: list[np.ndarray] | None = None) -> SegmentationDataset:
    items = [SegItem(f"img{k}", image, None if masks is None else masks[k]) for k, image in enumerate(images)]
    source = SegSource("mem", tuple(f"c{k}" for k in range(5)), ("all",), lambda s: [], lambda n: None)
    return SegmentationDataset(items, source, seg_eval_transform(None, fill=source.mean), with_mask=masks is not None)


@torch.no_grad()
@pytest.mark.parametrize("window, stride", [((8, 8), (5, 5)), ((8, 12), None), ((30, 7), (3, 2))])
def test_bands_are_window_logits_to_the_bit_and_hold_a_few_rows(window, stride) -> None:
    torch.manual_seed(0)
    net, x = Net().eval(), torch.rand(2, 3, 29, 23)
    bands = list(window_bands(net, x, window, stride))
    assert [b[0] for b in bands][0] == 0 and bands[-1][1] == 29
    assert all(a[1] == b[0] for a, b in zip(bands, bands[1:]))  # consecutive, each row once
    assert torch.equal(torch.cat([b[2] for b in bands], dim=2), window_logits(net, x, window, stride))
    step = (stride or (max(1, window[0] * 2 // 3),))[0]
    assert max(end - top for top, end, _ in bands) <= max(step, min(window[0], 29))


@torch.no_grad()
def test_whole_images_are_one_band_and_max_side_decides() -> None:
    torch.manual_seed(0)
    net, x = Net().eval(), torch.rand(1, 3, 12, 16)
    ((top, end, logits),) = window_bands(net, x, None)
    assert (top, end) == (0, 12) and torch.equal(logits, window_logits(net, x, None))
    assert inference_window((12, 16), None, 16) is None and inference_window((12, 16), None, 0) is None
    assert inference_window((12, 17), None, 16) == (16, 16)
    assert inference_window((12, 17), (4, 4), 16) == (4, 4)  # eval.window wins


@torch.no_grad()
def test_labelling_a_large_image_in_windows_equals_window_logits() -> None:
    """Images four windows high and wide: classes and confidences as from the full-size logits.

    (Images of one size: a batch of several sizes is padded to the largest, and the windows are
    placed on the padded batch, as the whole-image and ``eval.window`` paths always did.)"""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 57, 3), dtype=np.uint8) for _ in range(2)]
    torch.manual_seed(0)
    net = Net().eval()
    got = {n: (c, f) for n, c, f in label_images(net, _dataset(images), 2, CPU, False, max_side=16)}
    # the batch the pass itself sees (a convolution's last bits may depend on the batch size)
    x = torch.stack([_dataset(images)[k]["image"] for k in range(len(images))])
    want_conf, want_cls = max_softmax(window_logits(net, x, (16, 16), None))
    for k in range(len(images)):
        assert np.array_equal(got[f"img{k}"][0], want_cls[k].numpy())
        assert np.array_equal(got[f"img{k}"][1], want_conf[k].numpy())
    # a max_side that covers the images: whole-image labelling, as without one
    whole = {n: (c, f) for n, c, f in label_images(net, _dataset(images), 2, CPU, False)}
    covered = {n: (c, f) for n, c, f in label_images(net, _dataset(images), 2, CPU, False, max_side=64)}
    for name in whole:
        assert all(np.array_equal(a, b) for a, b in zip(whole[name], covered[name]))


@torch.no_grad()
def test_evaluation_over_max_side_equals_the_same_windows() -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for _ in range(3)]
    masks = [rng.integers(0, 5, (48, 40), dtype=np.uint8) for _ in range(3)]
    torch.manual_seed(0)
    net = Net().eval()
    auto = evaluate_segmentation(net, _dataset(images, masks), 5, 2, CPU, max_side=16)
    explicit = evaluate_segmentation(net, _dataset(images, masks), 5, 2, CPU, window=(16, 16))
    whole = evaluate_segmentation(net, _dataset(images, masks), 5, 2, CPU)
    assert auto == explicit and auto != whole


CHILD = textwrap.dedent("""
    import json, sys
    from dmt.bench.harness import peak_rss_bytes
    import numpy as np, torch
    from torch import nn
    from dmt.data.segmentation import SegItem, SegmentationDataset, SegSource
    from dmt.data.transforms import seg_eval_transform
    from dmt.tasks.segmentation.labelling import label_images
    side, classes = int(sys.argv[1]), 21
    torch.set_num_threads(1)
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    source = SegSource("mem", tuple(str(k) for k in range(classes)), ("all",), lambda s: [], lambda n: None)
    dataset = SegmentationDataset([SegItem("big", image, None)], source, seg_eval_transform(None), with_mask=False)
    net = nn.Conv2d(3, classes, 1).eval()
    before = peak_rss_bytes()  # this process's own (ru_maxrss would carry pytest's size over)
    for name, cls, conf in label_images(net, dataset, 1, torch.device("cpu"), False, max_side=128):
        assert cls.shape == (side, side)
    print(json.dumps({"peak_mib": peak_rss_bytes() / 2**20, "before_mib": before / 2**20}))
""")


def test_labelling_memory_does_not_grow_with_the_image(tmp_path):
    """A 1536 x 1536 image, 21 classes: its full-size float32 logits alone would be 189 MiB
    (and their softmax as much again); labelled in 128-pixel windows, the process grows by the
    image, its 3-byte-per-pixel labels and a few rows of windows (about 75 MiB in all)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run([sys.executable, str(script), "1536"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    full_logits_mib = 1536 * 1536 * 21 * 4 / 2**20
    assert figures["peak_mib"] - figures["before_mib"] < full_logits_mib / 1.5, figures
