"""`dmt.predict.export`: tiny segmentation and classification models in both formats, verified on odd sizes;
a perturbed graph is refused and leaves nothing; metadata read back."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from dmt.errors import UserError
from dmt.predict import export as export_module
from dmt.predict.export import ExportedGraph, export_model, sha256_of
from dmt.predict.verify import LOGIT_RTOL, compare, tolerance
from dmt.tasks.segmentation.inference import upsampled_logits

sys.path.insert(0, str(Path(__file__).parent))
from export_fixtures import CLASSES, needs_onnx, save_tiny  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

# (registered model, factory arguments): DeepLab-v3+ predicts at 1/4 and is upsampled inside the graph;
# trained at output stride 16, it predicts at 8 in eval mode, the network the export takes. DeepLab-v2
# (1/8) is exported by tests/predict/test_onnx_predict.py.
MODELS = {"segmentation": ("deeplabv3plus_tiny", {"eval_output_stride": 8}), "classification": ("tiny_cnn", {"width": 8})}


def _run_exported(path: Path, fmt: str, images: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime as ort

        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images})[0]
    return torch.jit.load(str(path))(torch.from_numpy(images)).detach().numpy()


def _read_metadata(path: Path, fmt: str) -> dict[str, str]:
    if fmt == "onnx":
        import onnx

        return {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    extra = {"dmt.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    return json.loads(extra["dmt.json"])


@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=needs_onnx), "torchscript"])
@pytest.mark.parametrize("task", ["segmentation", "classification"])
def test_export_is_verified_and_matches_the_model_on_new_sizes(task, fmt, tmp_path):
    name, kwargs = MODELS[task]
    model_file, model = save_tiny(tmp_path / "model.safetensors", name, **kwargs)
    assert getattr(model, "output_stride", 8) == 8
    out = tmp_path / "export" / f"model.{'onnx' if fmt == 'onnx' else 'pt'}"
    lines: list[str] = []
    report = export_model(model_file, out, fmt, print_fn=lines.append)
    assert report.path == out and out.is_file() and sorted(p.name for p in out.parent.iterdir()) == [out.name]
    # verified on batches of 1 and 3, segmentation at odd sizes the export did not trace
    shapes = [c.shape for c in report.checks]
    assert [s[0] for s in shapes] == [1, 3] and all(c.ok and c.agreement == 1.0 for c in report.checks)
    if task == "segmentation":
        assert all(s[2] % 2 and s[3] % 2 for s in shapes)
    assert len(lines) == 2 and all(line.startswith("verify ok") and "argmax agreement" in line for line in lines)
    # our own check, another size and batch: uint8 in, the model's logits out (upsampled to the input)
    rng = np.random.default_rng(7)
    side = (29, 51) if task == "segmentation" else (32, 32)
    images = rng.integers(0, 256, (3, 3, *side), dtype=np.uint8)
    with torch.no_grad():
        x = torch.from_numpy(images).float() / 255
        expected = (upsampled_logits(model, x) if task == "segmentation" else model(x)).numpy()
    got = _run_exported(out, fmt, images)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
    meta = _read_metadata(out, fmt)
    assert meta["task"] == task and json.loads(meta["class_names"]) == list(CLASSES)
    assert meta["source_sha256"] == sha256_of(model_file) and json.loads(meta["input_channels"]) == 3
    assert len(json.loads(meta["palette"])) == len(CLASSES) and meta["output"] == "logits"


@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=needs_onnx), "torchscript"])
def test_a_perturbed_graph_is_refused_and_leaves_nothing(fmt, tmp_path, monkeypatch):
    model_file, _ = save_tiny(tmp_path / "model.safetensors", "tiny_unet", width=4)
    real = export_module.EXPORTERS[fmt]

    def perturbed(graph, *args, **kwargs):
        broken = copy.deepcopy(graph)
        with torch.no_grad():
            broken.network.head.weight[0, 0] += 0.5  # one weight of the classifier changed
        real(broken, *args, **kwargs)
    monkeypatch.setitem(export_module.EXPORTERS, fmt, perturbed)
    out = tmp_path / "out" / ("m.onnx" if fmt == "onnx" else "m.pt")
    lines: list[str] = []
    with pytest.raises(UserError, match=r"not written: the exported .* does not match the PyTorch model .*"
                                         r"max \|logit difference\|"):
        export_model(model_file, out, fmt, print_fn=lines.append)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert lines and lines[0].startswith("verify FAIL")


def test_exporter_failures_and_bad_requests_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    model_file, _ = save_tiny(tmp_path / "model.safetensors", "tiny_cnn", width=4)

    def broken(*args, **kwargs):
        Path(args[2]).write_bytes(b"half a file")
        raise RuntimeError("unsupported operator\nlong details")
    monkeypatch.setitem(export_module.EXPORTERS, "torchscript", broken)
    with pytest.raises(UserError, match=r"the torchscript exporter failed \(RuntimeError: unsupported operator\)$"):
        export_model(model_file, tmp_path / "out" / "m.pt", "torchscript")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(UserError, match="must end in .onnx"):
        export_model(model_file, tmp_path / "m.bin", "onnx")
    with pytest.raises(UserError, match="--format 'tflite'"):
        export_model(model_file, tmp_path / "m.tflite", "tflite")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed
    with pytest.raises(UserError, match=r"needs onnxruntime: pip install 'dmt\[export\]'"):
        export_model(model_file, tmp_path / "m.onnx", "onnx")


def test_probabilities_output_and_grey_models(tmp_path):
    model_file, model = save_tiny(tmp_path / "digits.safetensors", "tiny_cnn", in_channels=1, width=4)
    out = tmp_path / "digits.pt"
    report = export_model(model_file, out, "torchscript", output="probabilities", size=8, print_fn=lambda s: None)
    assert [c.shape for c in report.checks] == [(1, 1, 8, 8), (3, 1, 8, 8)]
    images = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8), dtype=np.uint8)
    probs = _run_exported(out, "torchscript", images)
    with torch.no_grad():
        expected = model(torch.from_numpy(images).float() / 255).softmax(1).numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-6) and np.abs(probs - expected).max() < 1e-6
    assert json.loads(_read_metadata(out, "torchscript")["size"]) == 8


def test_graph_applies_the_models_input_convention_to_uint8(tmp_path):
    """BGR 0-255 caffe convention (DeepLab-v2 from COCO weights) inside the graph: uint8 RGB in."""
    from dmt.models.conventions import COCO_CAFFE, apply_convention

    _, model = save_tiny(tmp_path / "m.safetensors", "deeplabv2_tiny")
    apply_convention(model, COCO_CAFFE)
    images = torch.randint(0, 256, (2, 3, 17, 23), dtype=torch.uint8)
    with torch.no_grad():
        got = ExportedGraph(model, "segmentation")(images)
        expected = upsampled_logits(model, TF.to_dtype(images, torch.float32, scale=True))  # as dmt reads images
    assert torch.equal(got, expected) and got.shape == (2, len(CLASSES), 17, 23)


def test_tolerance_is_relative_to_the_logits_and_a_shape_mismatch_fails():
    ref = np.full((1, 2, 3, 3), 1000.0, dtype=np.float32)
    assert tolerance(ref, "logits") == pytest.approx(1000 * LOGIT_RTOL)
    assert tolerance(ref / 1e4, "logits") == pytest.approx(LOGIT_RTOL)  # at least the absolute floor
    assert compare((1, 3, 3, 3), ref, ref + 0.05, "logits").ok
    assert not compare((1, 3, 3, 3), ref, ref + 0.2, "logits").ok
    assert not compare((1, 3, 3, 3), ref, ref[..., :2], "logits").ok
    assert not compare((1, 3, 3, 3), ref, ref * np.nan, "logits").ok
