"""``data.randaugment_policy`` reaches the classification runner's training transform."""

import pytest
import torch

from dmt.config import load_config
from dmt.data.classification_transforms import Cutout, RandomMagnitudeRandAugment
from dmt.data.randaugment import OriginalRandAugment
from dmt.run.rundir import RunDir
from dmt.tasks.classification.runner import ClassificationRunner
from dmt.tasks.context import StageContext


@pytest.mark.parametrize("policy", ["torchvision", "original"])
def test_runner_trains_with_the_configured_policy(policy, tmp_path):
    cfg = load_config("demo-digits", [f"data.randaugment_policy={policy}", "data.randaugment=true", "data.cutout=0"])
    runner = ClassificationRunner(StageContext(cfg, RunDir(tmp_path), torch.device("cpu")))
    kinds = [type(t) for t in runner.train_tf.transforms]
    assert (OriginalRandAugment in kinds) == (policy == "original")
    assert (RandomMagnitudeRandAugment in kinds) == (policy == "torchvision")
    assert Cutout not in kinds
    torch.manual_seed(0)
    image = torch.from_numpy(runner.data.pool.image(0)).permute(2, 0, 1).contiguous()
    assert runner.train_tf(image).shape == image.shape


def test_default_policy_is_torchvisions():
    assert load_config("demo-digits").data.randaugment_policy == "torchvision"
