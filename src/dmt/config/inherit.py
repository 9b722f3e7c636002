"""``base:`` inheritance between YAML config files, with the file each value came from.

A preset or user YAML file may name its parents with ``base:`` (one name or a list). A parent is
a preset name (``voc-8-dmt``, or an abstract base such as ``_voc``) or a YAML path relative to the
file that names it. Parents are merged in order, then the file itself: mappings merge key by key,
everything else (scalars, lists) replaces. Alongside the merged mapping we keep, for every dotted
key, the file that set it, which ``dmt presets --show`` prints.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import yaml

from dmt.errors import UserError

PRESET_DIR = Path(__file__).parent / "presets"
BASE_KEY = "base"
DEFAULT_ORIGIN = "default"
OVERRIDE_ORIGIN = "override"

Origins = dict[str, str]  # dotted key -> the file (or "override") that set it


def locate(source: str, relative_to: Path | None = None) -> Path:
    """A preset name or a YAML path (relative to ``relative_to``'s folder when given) -> its file."""
    preset = PRESET_DIR / f"{source}.yaml"
    if not Path(source).suffix and "/" not in source and preset.is_file():
        return preset
    path = Path(source)
    if relative_to is not None and not path.is_absolute():
        path = relative_to.parent / path
    if path.is_file():
        return path
    where = f"{relative_to}: base " if relative_to is not None else ""
    hint = " (see `dmt presets` for the presets)" if relative_to is None else ""
    raise UserError(f"{where}{source!r} is neither a preset nor a YAML file{hint}")


def display_name(path: Path) -> str:
    """How a file is named in provenance: presets by file name, other files by their path."""
    return path.name if path.parent.resolve() == PRESET_DIR.resolve() else str(path)


def read_mapping(path: Path) -> dict:
    """One YAML file as a mapping (empty file: ``{}``); other content is refused naming the file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return raw


def _base_names(value: Any, path: Path) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise UserError(f"{path}: 'base' must be a preset name or YAML path, or a list of them; got {value!r}")
    return names


def leaf_keys(tree: dict, prefix: str = "") -> Iterator[str]:
    """The dotted keys of a nested mapping's leaves (values that are not non-empty mappings)."""
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            yield from leaf_keys(v, f"{prefix}{k}.")
        else:
            yield prefix + str(k)


def _forget(origins: Origins, key: str) -> None:
    for k in [k for k in origins if k == key or k.startswith(key + ".")]:
        del origins[k]


def deep_merge(dst: dict, dst_origins: Origins, src: dict, src_origins: Origins, prefix: str = "") -> None:
    """Merge ``src`` into ``dst`` in place: mappings key by key, anything else replaces."""
    for k, v in src.items():
        key = prefix + str(k)
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], dst_origins, v, src_origins, key + ".")
            continue
        dst[k] = copy.deepcopy(v)
        _forget(dst_origins, key)
        dst_origins.update({s: o for s, o in src_origins.items() if s == key or s.startswith(key + ".")})


def resolve(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict, Origins]:
    """The file merged over its parents (recursively), without ``base``, and where each key came from."""
    raw = read_mapping(path)
    here = path.resolve()
    merged: dict = {}
    origins: Origins = {}
    for name in _base_names(raw.pop(BASE_KEY, None), path):
        parent = locate(name, relative_to=path)
        if parent.resolve() in (*chain, here):
            loop = " -> ".join(p.name for p in (*chain, here, parent.resolve()))
            raise UserError(f"{path}: base {name!r} makes a cycle ({loop})")
        parent_raw, parent_origins = resolve(parent, (*chain, here))
        deep_merge(merged, origins, parent_raw, parent_origins)
    mine = display_name(path)
    deep_merge(merged, origins, raw, {k: mine for k in leaf_keys(raw)})
    return merged, origins


def mark_overrides(origins: Origins, keys: list[list[str]]) -> None:
    """Record that these dotted keys (as parsed overrides) were set on the command line."""
    for parts in keys:
        key = ".".join(parts)
        _forget(origins, key)
        origins[key] = OVERRIDE_ORIGIN


def origin_of(origins: Origins, key: str) -> str:
    """Where a dotted key of the resolved config came from, else ``default``.

    Only leaves are recorded, so an ancestor is found only where a whole mapping was set at once
    (``model.kwargs={...}`` on the command line).
    """
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]))
        if found is not None:
            return found
    return DEFAULT_ORIGIN


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[: -len("...")].strip() if text.endswith("\n...") else text


def annotated_lines(resolved: dict, origins: Origins, prefix: str = "", indent: int = 0) -> list[tuple[str, str]]:
    """``(yaml line, origin)`` pairs for a resolved config dict, one per leaf, sections as headers."""
    out: list[tuple[str, str]] = []
    for k, v in resolved.items():
        key = prefix + str(k)
        pad = "  " * indent
        if isinstance(v, dict) and v:
            out.append((f"{pad}{k}:", ""))
            out += annotated_lines(v, origins, key + ".", indent + 1)
        else:
            out.append((f"{pad}{k}: {_scalar(v)}", origin_of(origins, key)))
    return out
