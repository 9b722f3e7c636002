"""The layout's promises (docs/architecture.md), read from the source: arrows point one way.

Every ``import`` of a ``dmt`` module is read with :mod:`ast`, lazy ones inside functions too:

* a package imports only the packages below it in :data:`LAYERS`;
* no two files import each other, directly or around a circle;
* no private name (``_x``) is imported from another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "dmt"

# top to bottom: a package may import the packages after it (and itself), never one before it
LAYERS = ("cli", "bench", "report", "suggest", "predict", "run", "tasks", "demo", "models", "annotations", "data",
          "engine", "method", "config", "atomic", "errors")
ROOT_MODULES = ("dmt", "dmt.errors")  # the package root (__version__) and the one exception type


def module_name(path: Path, src: Path = SRC) -> str:
    parts = ("dmt", *path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(src: Path = SRC) -> dict[str, set[tuple[str, str]]]:
    """``module -> {(imported module, imported name or "")}`` over every file below ``src``."""
    modules = {module_name(p, src): p for p in src.rglob("*.py")}
    out: dict[str, set[tuple[str, str]]] = {}
    for name, path in modules.items():
        found: set[tuple[str, str]] = set()
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if not base.startswith("dmt"):
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add((full, "") if full in modules else (base, alias.name))
            elif isinstance(node, ast.Import):
                found.update((a.name, "") for a in node.names if a.name.startswith("dmt"))
        out[name] = found
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "dmt"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk meets (empty when the graph has none)."""
    found, state, stack = [], {}, []

    def walk(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def against_layers(graph: dict[str, set[tuple[str, str]]]) -> list[str]:
    """``"a imports b"`` for every import of a package at or above the importer's layer."""
    wrong = []
    for module, targets in graph.items():
        own = layer(module)
        if own not in LAYERS:  # dmt/__init__.py, dmt/__main__.py, dmt/errors.py
            continue
        for target, _ in targets:
            other = layer(target)
            if target in ROOT_MODULES or other == own:
                continue
            if other not in LAYERS or LAYERS.index(other) <= LAYERS.index(own):
                wrong.append(f"{module} imports {target}")
    return sorted(wrong)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[tuple[str, str]]]:
    return imports()


def test_every_package_is_in_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(LAYERS), f"packages with no place in LAYERS: {sorted(packages - set(LAYERS))}"


def test_packages_import_only_the_layers_below(graph) -> None:
    wrong = against_layers(graph)
    assert not wrong, "imports against the layers (docs/architecture.md):\n" + "\n".join(wrong)


def test_no_import_circle_between_files(graph) -> None:
    files = {m: {t for t, _ in targets if t in graph and t != m} for m, targets in graph.items()}
    assert not cycles(files), "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles(files))


def test_no_private_name_crosses_modules(graph) -> None:
    crossing = [f"{m} imports {t}.{n}" for m, targets in graph.items() for t, n in targets
                if n.startswith("_") and not n.startswith("__")]
    assert not crossing, "\n".join(crossing)


def test_the_checks_see_a_bad_tree(tmp_path) -> None:
    """The reader finds an upward import, a circle and a private name in a fabricated tree."""
    pkg = tmp_path / "dmt"
    for folder in ("method", "engine"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "method" / "a.py").write_text("def f():\n    from dmt.engine.b import _g\n")
    (pkg / "engine" / "b.py").write_text("from dmt.method.a import f\n\ndef _g():\n    pass\n")
    found = imports(pkg)
    assert ("dmt.engine.b", "_g") in found["dmt.method.a"]
    files = {m: {t for t, _ in ts if t in found} for m, ts in found.items()}
    assert cycles(files) == [["dmt.engine.b", "dmt.method.a", "dmt.engine.b"]]
    assert against_layers(found) == ["dmt.method.a imports dmt.engine.b"]
