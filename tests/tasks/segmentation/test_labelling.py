"""The streamed labelling pass gives exactly what the plain whole-batch path gives.

The plain path is the original one: ``predictions`` (the batch's logits upsampled to full size,
float32 softmax of the whole batch), ``max`` over classes, crop, ``float16``; thresholds from a
histogram of those maps, applied with ``apply_class_thresholds`` in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dmt.data.labels import PseudoLabelStore, histogram_of_store
from dmt.data.segmentation import SegItem, SegmentationDataset, SegSource
from dmt.data.transforms import seg_eval_transform
from dmt.method.thresholds import apply_class_thresholds, class_balanced_thresholds, confidence_histogram
from dmt.tasks.segmentation.inference import predictions
from dmt.tasks.segmentation.labelling import ThresholdedLabels, label_images

CLASSES = 5
SIZES = [(17, 23), (20, 19), (11, 30), (17, 23), (8, 8)]  # different sizes: padded batches


def dataset(pad_to: tuple[int, int] | None) -> SegmentationDataset:
    rng = np.random.default_rng(0)
    items = [SegItem(f"dir/img{i}", rng.integers(0, 256, (*s, 3), dtype=np.uint8)) for i, s in enumerate(SIZES)]
    source = SegSource("tiny", tuple(f"c{i}" for i in range(CLASSES)), ("all",), lambda s: [], lambda n: None)
    return SegmentationDataset(items, source, seg_eval_transform(pad_to, fill=source.mean), with_mask=False)


def model(stride: int) -> nn.Module:
    """A 1x1-conv stand-in (full-size logits) or a strided net whose logits are upsampled."""
    torch.manual_seed(stride)
    if stride == 1:
        return nn.Conv2d(3, CLASSES, 1)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=stride, padding=1), nn.ReLU(), nn.Conv2d(8, CLASSES, 1))


def plain_labels(net: nn.Module, ds: SegmentationDataset, batch_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for batch, probs in predictions(net, ds, batch_size, torch.device("cpu"), False):
        conf, cls = probs.max(dim=1)
        for i, name in enumerate(batch["name"]):
            h, w = batch["size"][i]
            out[name] = (cls[i, :h, :w].to(torch.uint8).numpy(), conf[i, :h, :w].to(torch.float16).numpy())
    return out


@pytest.mark.parametrize("stride", [1, 2, 8])
@pytest.mark.parametrize("pad_to, batch_size", [(None, 2), ((24, 32), 3), (None, 1)])
def test_streamed_labels_equal_plain_path(stride, pad_to, batch_size) -> None:
    net, ds = model(stride), dataset(pad_to)
    expected = plain_labels(net, ds, batch_size)
    got = list(label_images(net, ds, batch_size, torch.device("cpu"), False))
    assert [g[0] for g in got] == [it.name for it in ds.items]
    for name, cls, conf in got:
        assert cls.dtype == np.uint8 and conf.dtype == np.float16 and cls.shape == conf.shape
        assert np.array_equal(cls, expected[name][0])
        assert np.array_equal(conf.view(np.uint16), expected[name][1].view(np.uint16))  # bit for bit


@pytest.mark.parametrize("ratio", [0.2, 0.6, 1.0])
def test_thresholds_and_read_back_labels_equal_plain_path(tmp_path, ratio) -> None:
    net, ds = model(2), dataset(None)
    store = PseudoLabelStore(tmp_path / "labels")
    for name, cls, conf in label_images(net, ds, 2, torch.device("cpu"), False):
        store.write(name, cls, conf)
    names = [it.name for it in ds.items]
    expected = plain_labels(net, ds, 2)

    plain_hist = sum(confidence_histogram(torch.from_numpy(c), torch.from_numpy(p), CLASSES)
                     for c, p in expected.values())
    hist = histogram_of_store(store, names, CLASSES)
    assert torch.equal(hist, plain_hist)
    thresholds, kept, _ = class_balanced_thresholds(hist, ratio)
    plain_thresholds, plain_kept, _ = class_balanced_thresholds(plain_hist, ratio)
    assert torch.equal(thresholds, plain_thresholds) and torch.equal(kept, plain_kept)

    targets = ThresholdedLabels(store, thresholds)
    total = 0
    for name in names:
        labels, conf = targets(name)
        cls, plain_conf = expected[name]
        want = apply_class_thresholds(torch.from_numpy(cls), torch.from_numpy(plain_conf), plain_thresholds).numpy()
        assert labels.dtype == np.uint8 and np.array_equal(labels, want)
        assert np.array_equal(conf.view(np.uint16), plain_conf.view(np.uint16))
        total += int((labels != 255).sum())
    assert total == int(kept.sum())


@pytest.mark.parametrize("stride", [1, 8])
def test_channels_last_inference_feeds_nhwc_and_agrees(stride) -> None:
    """train.channels_last in inference: the model sees NHWC inputs; labels agree with NCHW ones."""
    ds = dataset(None)
    expected = plain_labels(model(stride), ds, 2)
    net, layouts = model(stride), []
    net.register_forward_pre_hook(lambda mod, inp: layouts.append(
        inp[0].is_contiguous(memory_format=torch.channels_last) and not inp[0].is_contiguous()))
    got = {name: (cls, conf) for name, cls, conf in label_images(net, ds, 2, torch.device("cpu"), False,
                                                                  channels_last=True)}
    assert layouts and all(layouts)
    first = net[0] if isinstance(net, nn.Sequential) else net
    assert first.weight.is_contiguous(memory_format=torch.channels_last)
    for name, (cls, conf) in got.items():
        # another convolution algorithm: the same labels except at near-ties, confidences to rounding
        assert (cls == expected[name][0]).mean() > 0.99
        np.testing.assert_allclose(conf.astype(np.float32), expected[name][1].astype(np.float32), atol=2e-3)
    probs_nchw = [p for _, p in predictions(model(stride), ds, 2, torch.device("cpu"), False)]
    probs_nhwc = [p for _, p in predictions(model(stride), ds, 2, torch.device("cpu"), False, channels_last=True)]
    for a, b in zip(probs_nchw, probs_nhwc):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
