"""The original's RandAugment (``data.randaugment_policy: original``): each operation on tiny images
against hand-computed results, the operation table, and the sampling of operations and magnitudes."""

from collections import Counter

import pytest
import torch
from torchvision import tv_tensors

from dmt.data.classification_transforms import Cutout, RandomMagnitudeRandAugment, classification_train_transform
from dmt.data.randaugment import (
    CUTOUT_COLOUR,
    OPERATIONS,
    OriginalRandAugment,
    cutout,
    cutout_box,
    invert,
    posterize,
    rotate,
    shear,
    solarize,
    solarize_add,
    translate,
)


def _row(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.uint8).reshape(1, 1, -1)


def test_the_sixteen_operations_and_their_ranges():
    assert [(op.name, op.low, op.high) for op in OPERATIONS] == [
        ("AutoContrast", 0, 1), ("Equalize", 0, 1), ("Invert", 0, 1), ("Rotate", 0, 30), ("Posterize", 0, 4),
        ("Solarize", 0, 256), ("SolarizeAdd", 0, 110), ("Color", 0.1, 1.9), ("Contrast", 0.1, 1.9),
        ("Brightness", 0.1, 1.9), ("Sharpness", 0.1, 1.9), ("ShearX", 0, 0.3), ("ShearY", 0, 0.3),
        ("Cutout", 0, 40), ("TranslateX", 0, 100), ("TranslateY", 0, 100)]
    by_name = {op.name: op for op in OPERATIONS}
    assert by_name["TranslateX"].value(10) == 100 and by_name["TranslateY"].value(3) == 30
    assert by_name["Cutout"].value(10) == 40 and by_name["Cutout"].value(1) == 4
    assert by_name["Color"].value(5) == pytest.approx(1.0)  # the middle magnitude leaves colours alone
    assert by_name["Rotate"].value(7) == pytest.approx(21)


def test_invert():
    assert torch.equal(invert(_row([0, 1, 128, 255])), _row([255, 254, 127, 0]))


def test_posterize_keeps_high_bits_and_magnitudes_give_one_to_four_bits():
    x = _row([0b11111111, 0b10110101, 0b01011010, 0b00111111])
    assert torch.equal(posterize(x, 1), _row([0b10000000, 0b10000000, 0, 0]))
    assert torch.equal(posterize(x, 2), _row([0b11000000, 0b10000000, 0b01000000, 0]))
    op = OPERATIONS[4]
    applied = [op.apply(_row([255]), op.value(m), 1, (0, 0)).item() for m in range(1, 11)]
    # max(1, int(0.4 m)) bits: 1, 1, 1, 1, 2, 2, 2, 3, 3, 4
    assert applied == [128, 128, 128, 128, 192, 192, 192, 224, 224, 240]


def test_solarize_and_solarize_add():
    x = _row([0, 100, 127, 128, 200, 250])
    assert torch.equal(solarize(x, 128), _row([0, 100, 127, 127, 55, 5]))
    assert torch.equal(solarize(x, 256), x)  # the top of the range changes nothing
    # +30 -> 30, 130, 157, 158, 230, 255 (clipped); then values >= 128 are inverted
    assert torch.equal(solarize_add(x, 30), _row([30, 125, 98, 97, 25, 0]))
    assert torch.equal(solarize_add(x, 0), solarize(x, 128))
    assert torch.equal(solarize_add(_row([10]), 11.9), _row([21]))  # truncated like the original's uint8 cast


def test_translate_moves_by_whole_pixels_and_fills_black():
    x = torch.arange(1, 13, dtype=torch.uint8).reshape(1, 3, 4)
    right = translate(x, 2, 0)
    assert torch.equal(right[..., 2:], x[..., :2]) and (right[..., :2] == 0).all()
    up = translate(x, 0, -1)
    assert torch.equal(up[:, :2], x[:, 1:]) and (up[:, 2] == 0).all()
    assert (translate(x, 4, 0) == 0).all() and (translate(x, -100, 0) == 0).all()  # 100 px empties CIFAR
    assert torch.equal(translate(x, 0, 0), x)


def test_cutout_area_and_colour():
    # side 4 at centre (5, 5) of 10x10: corner int(5 - 2) = 3, drawn to 3 + 4 inclusive: 5 x 5
    rows, cols = cutout_box(4, 5.0, 5.0, 10, 10)
    assert (rows, cols) == (slice(3, 8), slice(3, 8))
    # near the bottom-right corner: corner int(9.5 - 2) = 7, clipped at 9: 3 x 3
    assert cutout_box(4, 9.5, 9.5, 10, 10) == (slice(7, 10), slice(7, 10))
    # near the top-left corner: corner 0, to 0 + 40 clipped: the whole 32 x 32 CIFAR image
    assert cutout_box(40, 1.0, 1.0, 32, 32) == (slice(0, 32), slice(0, 32))
    img = torch.zeros(3, 10, 10, dtype=torch.uint8)
    out = cutout(img, rows, cols)
    painted = (out != 0).any(0)
    assert int(painted.sum()) == 25 and painted[3:8, 3:8].all()
    assert out[:, 5, 5].tolist() == list(CUTOUT_COLOUR) and int(img.sum()) == 0  # input untouched
    grey = cutout(torch.zeros(1, 4, 4, dtype=torch.uint8), slice(0, 1), slice(0, 1))
    assert grey[0, 0, 0] == round(sum(CUTOUT_COLOUR) / 3)


def test_geometric_operations_fill_black_and_keep_content_at_zero():
    x = torch.full((3, 8, 8), 200, dtype=torch.uint8)
    assert torch.equal(rotate(x, 0.0), x) and torch.equal(shear(x, 0.0, "x"), x)
    turned = rotate(x, 30.0)
    assert turned[:, 0, 0].tolist() == [0, 0, 0] and turned[:, 4, 4].tolist() == [200, 200, 200]
    sheared = shear(x, 0.3, "x")
    assert sheared[:, 0, 0].tolist() == [200, 200, 200]  # the top-left corner is the fixed point
    assert (sheared == 0).any()


def test_sampling_of_magnitudes_and_operations():
    aug = OriginalRandAugment(num_ops=1, max_magnitude=10)
    img = torch.zeros(3, 32, 32, dtype=torch.uint8)
    torch.manual_seed(0)
    draws = [aug.make_params([img]) for _ in range(3200)]
    magnitudes = Counter(d["magnitude"] for d in draws)
    ops = Counter(op.name for d in draws for op, _, _ in d["steps"])
    signs = Counter(sign for d in draws for _, sign, _ in d["steps"])
    assert all(len(d["steps"]) == 1 for d in draws)
    assert sorted(magnitudes) == list(range(1, 11)) and all(230 < n < 410 for n in magnitudes.values())
    assert set(ops) == {op.name for op in OPERATIONS} and all(130 < n < 280 for n in ops.values())
    assert set(signs) == {-1, 1} and 1400 < signs[1] < 1800
    centres = [c for d in draws for _, _, c in d["steps"]]
    assert all(1 <= x < 32 and 1 <= y < 32 for x, y in centres)
    assert len(OriginalRandAugment(num_ops=3).make_params([img])["steps"]) == 3
    assert max(d["magnitude"] for d in (OriginalRandAugment(max_magnitude=2).make_params([img]) for _ in range(50))) == 2


def test_transform_applies_the_drawn_operation_and_keeps_the_type():
    aug = OriginalRandAugment()
    x = tv_tensors.Image(torch.randint(0, 256, (3, 6, 6), dtype=torch.uint8))
    out = aug.transform(x, {"magnitude": 7, "steps": [(OPERATIONS[2], 1, (1.0, 1.0))]})  # Invert
    assert isinstance(out, tv_tensors.Image) and torch.equal(out.as_subclass(torch.Tensor), 255 - x)
    out = aug.transform(x, {"magnitude": 3, "steps": [(OPERATIONS[14], -1, (1.0, 1.0))]})  # TranslateX -30
    assert (out == 0).all()
    with pytest.raises(TypeError, match="uint8"):
        aug.transform(torch.zeros(3, 4, 4), {"magnitude": 1, "steps": []})
    torch.manual_seed(1)
    assert aug(torch.zeros(3, 8, 8, dtype=torch.uint8)).shape == (3, 8, 8)


def test_training_preset_with_the_original_policy_has_no_separate_cutout():
    original = classification_train_transform(32, cutout=None, policy="original")
    kinds = [type(t) for t in original.transforms]
    assert OriginalRandAugment in kinds and Cutout not in kinds and RandomMagnitudeRandAugment not in kinds
    assert RandomMagnitudeRandAugment in [type(t) for t in classification_train_transform(32).transforms]
    torch.manual_seed(0)
    out = original(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.shape == (3, 32, 32) and 0 <= out.min() <= out.max() <= 1
    with pytest.raises(ValueError, match="policy"):
        classification_train_transform(32, policy="autoaugment")


@pytest.mark.parametrize("channels", [1, 3])
def test_every_operation_at_every_magnitude_keeps_shape_and_dtype(channels):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (channels, 8, 8), dtype=torch.uint8)
    for op in OPERATIONS:
        for m in range(1, 11):
            for sign in (-1, 1):
                out = op.apply(x, op.value(m), sign, (4.0, 4.0))
                assert out.shape == x.shape and out.dtype == torch.uint8, (op.name, m)
