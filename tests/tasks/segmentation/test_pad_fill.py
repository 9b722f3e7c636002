"""``data.pad_fill``: segmentation padding in the mean colour (default) or black, as the original."""

import pytest
import torch

from dmt.config import load_config
from dmt.run.rundir import RunDir
from dmt.tasks.context import StageContext
from dmt.tasks.segmentation.runner import SegmentationRunner

# 16x16 scenes, evaluation padded to 20x20; training crops of 24 at scale 1 pad by 8 and crop nothing
SMALL = ["data.num_scenes=8", "data.val_scenes=2", "data.scene_size=[16, 16]", "data.labelled_split=1/2",
         "data.eval_pad=[20, 20]", "data.crop_size=[24, 24]", "data.scale_range=[1.0, 1.0]"]


def _runner(tmp_path, fill: str) -> SegmentationRunner:
    cfg = load_config("demo-digit-scenes", [*SMALL, f"data.pad_fill={fill}"])
    return SegmentationRunner(StageContext(cfg, RunDir(tmp_path / fill), torch.device("cpu")))


@pytest.mark.parametrize("fill", ["mean", "black"])
def test_padding_colour_of_evaluation_labelling_and_training(fill, tmp_path):
    runner = _runner(tmp_path, fill)
    expected = torch.zeros(3) if fill == "black" else torch.tensor(runner.data.source.mean)
    item = runner.data.val[0]
    sample = runner._dataset([item], train=False)[0]
    assert sample["image"].shape == (3, 20, 20)
    for pad in (sample["image"][:, 16:, :], sample["image"][:, :, 16:]):
        assert torch.equal(pad, expected[:, None, None].expand_as(pad))

    torch.manual_seed(0)
    crop = runner._dataset(runner.data.labelled["a"][:1], train=True)[0]
    assert crop["image"].shape == (3, 24, 24)
    pad = crop["image"][:, 16:, :]  # bottom rows are padding whatever the flip
    assert torch.equal(pad, expected[:, None, None].expand_as(pad))
    assert (crop["mask"][16:, :] == 255).all()


def test_black_is_what_the_original_pads_and_mean_the_default():
    assert load_config("demo-digit-scenes").data.pad_fill == "mean"
    assert load_config("demo-digit-scenes", ["data.pad_fill=black"]).data.pad_fill == "black"
