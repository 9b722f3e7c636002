"""`dmt/__init__.py`: the public names (``__all__``) load lazily, are documented, and `import dmt` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dmt

SRC = Path(__file__).resolve().parents[1] / "src"


def test_import_dmt_imports_no_torch():
    code = "import sys, dmt; assert dmt.__version__; print(sorted(m for m in sys.modules if m.startswith('torch')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("name", dmt.__all__)
def test_every_public_name_loads_and_is_documented(name):
    value = getattr(dmt, name)
    if name != "DEFAULT_RATIOS":
        assert callable(value) and (value.__doc__ or "").strip(), f"dmt.{name} has no docstring"
    assert name in dir(dmt)


def test_private_names_are_not_public():
    with pytest.raises(AttributeError, match="no attribute 'dynamic_weights_from_view'"):
        dmt.dynamic_weights_from_view  # noqa: B018
    assert "create_model" not in dmt.__all__ and len(dmt.__all__) == len(set(dmt.__all__))
