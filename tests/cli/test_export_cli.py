"""`dmt export` end to end: verification lines and exit 0; a mismatch or a bad file is one line, exit 2, no file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from dmt.cli.main import main
from dmt.predict import export as export_module

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from export_fixtures import needs_onnx, save_tiny  # noqa: E402


@pytest.mark.parametrize("fmt, name", [pytest.param("onnx", "m.onnx", marks=needs_onnx), ("torchscript", "m.pt")])
def test_export_prints_its_checks_and_writes_one_file(fmt, name, tmp_path, capsys):
    model_file, _ = save_tiny(tmp_path / "model.safetensors", "tiny_cnn", width=4)
    out = tmp_path / "exports" / name
    assert main(["export", str(model_file), "--format", fmt, "--out", str(out), "--output", "probabilities"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["verify", "ok"]] * 2
    assert "max |probability difference|" in lines[0] and lines[-1].startswith(f"exported {model_file} -> {out}")
    assert [p.name for p in out.parent.iterdir()] == [name]


def test_a_mismatch_is_one_line_exit_2_and_no_file(tmp_path, capsys, monkeypatch):
    model_file, _ = save_tiny(tmp_path / "model.safetensors", "tiny_unet", width=4)
    real = export_module.EXPORTERS["torchscript"]

    def scaled(graph, *args, **kwargs):  # a graph whose logits are 1 % off
        real(_Scaled(graph), *args, **kwargs)
    monkeypatch.setitem(export_module.EXPORTERS, "torchscript", scaled)
    assert main(["export", str(model_file), "--format", "torchscript", "--out", str(tmp_path / "out" / "m.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'out' / 'm.pt'}: not written")
    assert list((tmp_path / "out").iterdir()) == []
    assert main(["export", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "error:" in capsys.readouterr().err


class _Scaled(torch.nn.Module):
    def __init__(self, graph: torch.nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.graph(images) * 1.01
