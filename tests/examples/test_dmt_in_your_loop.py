"""examples/dmt_in_your_loop.py: runs for a few steps, and uses nothing of dmt but its public names."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import dmt

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dmt_in_your_loop.py"


def test_the_example_uses_only_the_public_api():
    tree = ast.parse(EXAMPLE.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    from_dmt = [n.module for n in imports if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("dmt")]
    assert from_dmt == [], f"imports from dmt's modules: {from_dmt}"
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "dmt"}
    assert used and used <= set(dmt.__all__), f"not public: {sorted(used - set(dmt.__all__))}"
    assert {"dynamic_weights", "class_balanced_thresholds", "PseudoLabelStore"} <= used


def test_the_example_trains_a_few_steps():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}  # 2 shared cores
    done = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "2", "--phases", "1", "--size", "32",
                           "--unlabelled", "8"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if not line.startswith(" ")] == \
        ["baseline-a", "baseline-b", "phase1-a", "phase1-b"]
    assert sum("ratio 0.2: kept" in line for line in lines) == 2
