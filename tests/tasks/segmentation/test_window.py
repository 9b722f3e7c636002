"""Sliding-window inference: whole-image when the window covers the image, exact coverage counts, stitching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dmt.config.validate import check_window
from dmt.data.segmentation import SegItem, SegmentationDataset, SegSource
from dmt.data.transforms import seg_eval_transform
from dmt.errors import UserError
from dmt.tasks.segmentation.inference import (
    evaluate_segmentation,
    predictions,
    upsampled_logits,
    window_counts,
    window_logits,
    window_starts,
)
from dmt.tasks.segmentation.labelling import label_images
from dmt.tasks.segmentation.windows import default_stride


def strided_net(seed: int = 0) -> nn.Module:
    """Predicts at 1/2 resolution, like DeepLab at 1/4 or 1/8: logits are upsampled."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 1)).eval()


class Position(nn.Module):
    """Logits that depend only on the position in the input: channel 0 = row, channel 1 = column."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        rows = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(n, 1, h, w)
        cols = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(n, 1, h, w)
        return torch.cat([rows, cols], dim=1)


@torch.no_grad()
@pytest.mark.parametrize("window", [None, (20, 30), (64, 64), (20, 100)])
def test_equals_whole_image_when_the_window_covers_it(window) -> None:
    net, x = strided_net(), torch.rand(2, 3, 20, 30)
    assert torch.equal(window_logits(net, x, window, (5, 5) if window else None), upsampled_logits(net, x))


def test_window_starts_by_hand() -> None:
    assert window_starts(10, 4, 3) == [0, 3, 6]  # 6 + 4 = 10: the last window ends at the edge
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]  # one more, moved back to end at the edge
    assert window_starts(11, 4, 4) == [0, 4, 7]
    assert window_starts(4, 4, 1) == [0] and window_starts(3, 8, 2) == [0]
    assert window_starts(1024, 801, 534) == [0, 223]  # Cityscapes: 2 rows ...
    assert window_starts(2048, 801, 534) == [0, 534, 1068, 1247]  # ... of 4 windows


def test_every_pixel_counted_exactly() -> None:
    counts = window_counts(11, 10, (4, 4), (3, 3))
    rows = torch.tensor([1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 1])  # windows [0,4) [3,7) [6,10) [7,11)
    cols = torch.tensor([1, 1, 1, 2, 1, 1, 2, 1, 1, 1])  # windows [0,4) [3,7) [6,10)
    assert torch.equal(counts, rows[:, None] * cols[None, :])
    # without overlap every pixel is seen once
    assert torch.equal(window_counts(12, 8, (4, 4), (4, 4)), torch.ones(12, 8, dtype=torch.int64))
    # the window sum equals windows x area: nothing counted twice by accident
    assert int(counts.sum()) == 4 * 3 * 16


@torch.no_grad()
def test_position_model_is_stitched_exactly() -> None:
    x = torch.zeros(1, 3, 11, 10)
    out = window_logits(Position(), x, (4, 4), (3, 3))
    # pixel row y is seen from windows starting at rows [0, 3, 6, 7] that contain it: the mean offset
    expected_rows = [0, 1, 2, 1.5, 1, 2, 1.5, (7 - 6 + 0) / 2, (8 - 6 + 1) / 2, (9 - 6 + 2) / 2, 3]
    expected_cols = [0, 1, 2, 1.5, 1, 2, 1.5, 1, 2, 3]
    torch.testing.assert_close(out[0, 0, :, 0], torch.tensor(expected_rows))
    torch.testing.assert_close(out[0, 1, 0, :], torch.tensor(expected_cols))
    assert torch.equal(out[0, 0], out[0, 0, :, :1].expand(11, 10))  # rows do not depend on the column


@torch.no_grad()
def test_a_pointwise_model_gives_the_whole_image_result_with_any_windows() -> None:
    torch.manual_seed(0)
    net, x = nn.Conv2d(3, 5, 1).eval(), torch.rand(2, 3, 13, 17)
    torch.testing.assert_close(window_logits(net, x, (5, 6), (2, 3)), net(x))
    torch.testing.assert_close(window_logits(net, x, (5, 6), None), net(x))  # default stride: 2/3 of the window


def test_default_stride_and_checks() -> None:
    assert default_stride((801, 801)) == (534, 534) and default_stride((1, 2)) == (1, 1)
    check_window(None, None)
    check_window((4, 4), (4, 1))
    with pytest.raises(UserError, match="eval.stride': expected .* between 1 and eval.window"):
        check_window((4, 4), (5, 4))
    with pytest.raises(UserError, match="eval.stride': needs eval.window"):
        check_window(None, (4, 4))
    with pytest.raises(UserError, match="eval.window'"):
        check_window((0, 4), None)


def _dataset() -> SegmentationDataset:
    rng = np.random.default_rng(0)
    items = [SegItem(f"img{i}", rng.integers(0, 256, (s, s + 3, 3), dtype=np.uint8),
                     rng.integers(0, 4, (s, s + 3), dtype=np.uint8)) for i, s in enumerate((12, 16, 9))]
    source = SegSource("tiny", tuple(f"c{i}" for i in range(4)), ("all",), lambda s: [], lambda n: None)
    return SegmentationDataset(items, source, seg_eval_transform(None, fill=source.mean))


def test_evaluation_with_a_covering_window_equals_whole_image_evaluation() -> None:
    net, ds, cpu = strided_net(), _dataset(), torch.device("cpu")
    whole = evaluate_segmentation(net, ds, 4, 3, cpu)
    assert evaluate_segmentation(net, ds, 4, 3, cpu, window=[64, 64], stride=[8, 8]) == whole
    windowed = evaluate_segmentation(net, ds, 4, 3, cpu, window=[6, 6], stride=[4, 4])
    assert 0 <= windowed["miou"] <= 1


@torch.no_grad()
def test_labelling_uses_the_same_windows() -> None:
    net, ds, cpu = strided_net(), _dataset(), torch.device("cpu")
    plain = {}
    for batch, probs in predictions(net, ds, 2, cpu, False, window=[6, 6], stride=[4, 4]):
        conf, cls = probs.max(dim=1)
        for i, name in enumerate(batch["name"]):
            h, w = batch["size"][i]
            plain[name] = (cls[i, :h, :w].numpy(), conf[i, :h, :w].to(torch.float16).numpy())
    labelled = {n: (c, f) for n, c, f in label_images(net, ds, 2, cpu, False, window=[6, 6], stride=[4, 4])}
    assert labelled.keys() == plain.keys()
    for name, (cls, conf) in labelled.items():
        assert np.array_equal(cls, plain[name][0]) and np.array_equal(conf, plain[name][1])


def test_dmt_eval_takes_the_window_from_the_command_line(tmp_path, capsys) -> None:
    import json
    import sys
    from pathlib import Path

    from dmt.cli.main import main
    from dmt.models.deeplabv3plus import deeplabv3plus_tiny
    from dmt.models.files import save_model

    sys.path.insert(0, str(Path(__file__).parents[2] / "data"))
    from seg_fixtures import write_voc_tree

    root = write_voc_tree(tmp_path / "voc", size=(24, 32))
    torch.manual_seed(0)
    model_file = tmp_path / "model.safetensors"
    save_model(model_file, deeplabv3plus_tiny(21).eval(), name="deeplabv3plus_tiny", num_classes=21, kwargs={})
    base = ["eval", str(model_file), "--data", "voc", "--root", str(root), "--device", "cpu"]
    scores = {}
    for window in ("null", "[64, 64]", "[16, 16]"):
        assert main([*base, f"eval.window={window}", "eval.stride=null"]) == 0
        scores[window] = json.loads(capsys.readouterr().out)["miou"]
    assert scores["[64, 64]"] == scores["null"]  # a window covering the image is whole-image evaluation
    assert main([*base, "eval.window=[16, 16]", "eval.stride=[20, 8]"]) == 2
    assert "eval.stride" in capsys.readouterr().err
