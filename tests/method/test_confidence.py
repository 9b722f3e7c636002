"""max_softmax: hand-computed values, and bit-for-bit equal to the whole-batch softmax + max."""

from __future__ import annotations

import math

import pytest
import torch

from dmt.method.confidence import max_softmax


def plain(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The unstreamed path: float32 softmax of the whole batch, then max over classes."""
    conf, cls = logits.float().softmax(dim=1).max(dim=1)
    return conf.to(torch.float16), cls.to(torch.uint8)


def test_hand_computed() -> None:
    # pixel 0: logits (0, ln 3) -> probabilities (1/4, 3/4); pixel 1: a tie -> first class, 1/2;
    # pixel 2: (ln 2, 0, ln 5) -> (2/8, 1/8, 5/8)
    logits = torch.tensor([[0.0, 0.0, math.log(2)], [math.log(3), 0.0, 0.0], [-1e9, -1e9, math.log(5)]])
    logits[2, :2] = float("-inf")  # two classes only for the first pixels
    logits = logits.reshape(1, 3, 1, 3)
    conf, cls = max_softmax(logits)
    assert cls.dtype == torch.uint8 and conf.dtype == torch.float16 and conf.shape == (1, 1, 3)
    assert cls.flatten().tolist() == [1, 0, 2]
    assert conf.flatten().tolist() == [0.75, 0.5, 0.625]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Both thread counts: the kernels split work (and vector tails) by thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("scale", [0.001, 1.0, 8.0, 40.0])
@pytest.mark.parametrize("block", [37, 5000, 1 << 20])  # 1 row, 3 rows, whole images
def test_bitwise_equal_to_whole_batch(scale: float, block: int, threads: int) -> None:
    g = torch.Generator().manual_seed(int(scale * 1000) + block)
    logits = torch.randn(3, 21, 29, 67, generator=g) * scale  # odd sizes: partial vectors and blocks
    logits[0, 3:5, :4] = logits[0, 7, :4]  # exact ties between classes
    conf, cls = max_softmax(logits, block_elements=block)
    ref_conf, ref_cls = plain(logits)
    assert torch.equal(cls, ref_cls)
    assert torch.equal(conf.view(torch.int16), ref_conf.view(torch.int16))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_other_logit_dtypes_match_plain(dtype: torch.dtype) -> None:
    logits = (torch.randn(2, 5, 9, 13, generator=torch.Generator().manual_seed(1)) * 3).to(dtype)
    conf, cls = max_softmax(logits, block_elements=50)
    ref_conf, ref_cls = plain(logits)
    assert torch.equal(cls, ref_cls) and torch.equal(conf.view(torch.int16), ref_conf.view(torch.int16))


def test_non_contiguous_crop_matches_plain(threads: int) -> None:
    logits = torch.randn(2, 4, 20, 30, generator=torch.Generator().manual_seed(2))
    crop = logits[:, :, :11, :17]
    conf, cls = max_softmax(crop, block_elements=64)
    ref_conf, ref_cls = plain(logits)
    assert torch.equal(cls, ref_cls[:, :11, :17]) and torch.equal(conf, ref_conf[:, :11, :17])


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        max_softmax(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="float"):
        max_softmax(torch.zeros(1, 3, 4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="uint8"):
        max_softmax(torch.zeros(1, 257, 1, 1))


def test_voc_sized_image_matches_plain(threads: int) -> None:
    """One 505x505 image, 21 classes, in 1 MiB blocks: the sizes of a real labelling pass."""
    logits = torch.randn(1, 21, 505, 505, generator=torch.Generator().manual_seed(5)) * 3
    conf, cls = max_softmax(logits, block_elements=1 << 18)
    ref_conf, ref_cls = plain(logits)
    assert torch.equal(cls, ref_cls) and torch.equal(conf.view(torch.int16), ref_conf.view(torch.int16))


def test_channels_last_hand_computed() -> None:
    """NHWC logits take the last-dimension path: the same hand-computed values."""
    logits = torch.tensor([[0.0, 0.0, math.log(2)], [math.log(3), 0.0, 0.0], [float("-inf"), float("-inf"),
                                                                              math.log(5)]])
    logits = logits.reshape(1, 3, 1, 3).contiguous(memory_format=torch.channels_last)
    assert not logits.is_contiguous()
    conf, cls = max_softmax(logits)
    assert cls.flatten().tolist() == [1, 0, 2]
    assert conf.flatten().tolist() == [0.75, 0.5, 0.625]


@pytest.mark.parametrize("shape", [(2, 21, 37, 29), (1, 5, 8, 1), (3, 19, 1, 64)])
def test_channels_last_agrees_with_the_nchw_path(shape, threads) -> None:
    torch.manual_seed(sum(shape))
    logits = torch.randn(shape) * 4
    want_conf, want_cls = plain(logits)
    conf, cls = max_softmax(logits.contiguous(memory_format=torch.channels_last), block_elements=300)
    top2 = logits.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-5  # away from near-ties the class cannot differ
    assert torch.equal(cls[clear], want_cls[clear])
    # within one float16 rounding step
    torch.testing.assert_close(conf.float(), want_conf.float(), atol=0, rtol=2 ** -10)
