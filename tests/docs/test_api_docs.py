"""docs/api.md and docs/export.md cannot rot: their ```python blocks run, in order, in an empty folder.

Each page's blocks share one namespace, as a reader typing them into one session would; a block
whose first line is ``# needs: dmt[export]`` is skipped without the export extra. The printed
results the pages show in comments are checked where they are exact (``# [...]`` after a print).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from export_fixtures import HAS_ONNX  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def run_blocks(blocks: list[str], capsys) -> list[str]:
    """Run the blocks in one namespace; returns each block's printed output."""
    namespace: dict = {"__name__": "__docs__"}
    printed = []
    for number, code in enumerate(blocks, 1):
        if code.startswith("# needs: dmt[export]") and not HAS_ONNX:
            printed.append("")
            continue
        try:
            exec(compile(code, f"block {number}", "exec"), namespace)
        except Exception as e:  # name the block, keep the traceback
            raise AssertionError(f"block {number} failed:\n{code}") from e
        printed.append(capsys.readouterr().out)
    return printed


def test_api_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks("api.md")
    assert len(blocks) >= 6
    printed = run_blocks(blocks, capsys)
    assert "['baseline-a', 'baseline-b', 'phase1-a', 'phase1-b']" in printed[0]
    assert printed[1].startswith("[0.2, 0.4, 0.6, 0.8, 1.0] 5.0 deeplabv2_resnet101")
    assert "(48, 40) uint8 float32" in printed[2]
    assert not HAS_ONNX or "[True, True]" in printed[3]
    assert "torch.Size([2, 8, 8]) 0.0" in printed[4]
    assert "(0.2, 0.4, 0.6, 0.8, 1.0) True" in printed[5]
    assert printed[6].endswith("True\n") and len(eval(printed[6].splitlines()[0])) == 4


@pytest.mark.skipif(not HAS_ONNX, reason="needs the export extra")
def test_export_page_runs_with_onnxruntime_alone(tmp_path, monkeypatch, capsys):
    """The deployment snippet, on a file dmt export wrote and a photo, without dmt or torch in it."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
    from export_fixtures import save_tiny, write_image

    from dmt.predict.export import export_model

    monkeypatch.chdir(tmp_path)
    model_file, _ = save_tiny(tmp_path / "model.safetensors", "tiny_unet", width=4)
    export_model(model_file, "model.onnx", print_fn=lambda line: None)
    write_image(tmp_path / "photo.jpg", 30, 41, seed=0)
    blocks = python_blocks("export.md")
    assert blocks and all("import dmt" not in b and "torch" not in b for b in blocks)
    run_blocks(blocks, capsys)
    mask = np.asarray(Image.open("mask.png"))
    assert mask.shape == (30, 41, 3)
