"""From YAML, presets and ``key=value`` overrides to a validated :class:`ExperimentConfig`.

Precedence: dataclass defaults < preset or YAML file (its ``base:`` parents first, see
:mod:`dmt.config.inherit`) < command-line overrides. Unknown keys and
wrong types are refused with a :class:`~dmt.errors.UserError` naming the dotted key and what was
expected.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from dmt.config.inherit import PRESET_DIR, Origins, locate, mark_overrides, resolve
from dmt.config.schema import REMOVED_KEYS, ExperimentConfig
from dmt.config.validate import validate_config
from dmt.errors import UserError

log = logging.getLogger("dmt")

def list_presets() -> dict[str, str]:
    """Preset names and their one-line descriptions, sorted by name.

    Files whose name starts with ``_`` are abstract bases (parents named by ``base:``) and are
    not listed.
    """
    out = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        if path.stem.startswith("_"):
            continue
        raw, _ = resolve(path)
        out[path.stem] = str(raw.get("description", "")).strip().splitlines()[0] if raw.get("description") else ""
    return out


def read_yaml(source: str) -> tuple[dict, str]:
    """Read a preset name or a YAML file path into a plain dict, its ``base:`` parents merged in;
    returns ``(dict, origin)``."""
    raw, _, path = read_yaml_with_origins(source)
    return raw, path


def read_yaml_with_origins(source: str) -> tuple[dict, Origins, str]:
    """As :func:`read_yaml`, plus the file each dotted key came from (see :mod:`dmt.config.inherit`)."""
    try:
        path = locate(source)
    except UserError as exc:
        raise UserError(f"{exc}{did_you_mean(source)}") from None
    raw, origins = resolve(path)
    return raw, origins, str(path)


def did_you_mean(source: str) -> str:
    """``"; did you mean 'voc-20-dmt'?"`` for a mistyped preset name (public presets only), else ``""``."""
    if Path(source).suffix or "/" in source:
        return ""
    names = [n for n in list_presets() if not n.startswith("_")]
    close = difflib.get_close_matches(source, names, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"phases.lr=0.1"`` -> ``(["phases", "lr"], 0.1)``; values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise UserError(f"override {text!r} must look like dotted.key=value")
    key, value = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"override {text!r} has an empty key")
    try:
        parsed = yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set dotted keys in a nested dict (creating sub-dicts); validation happens later."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {} if node.get(part) is None else node[part]
                if not isinstance(node[part], dict):
                    raise UserError(f"override {text!r}: {part!r} is not a section")
            node = node[part]
        node[path[-1]] = value
    return raw


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(inner)}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting ints to floats where a float is due)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"config key {key!r}: expected a section (mapping), got {value!r}")
        return _build(tp, value, key + ".")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise UserError(f"config key {key!r}: expected one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, key)
            except UserError:
                continue
        raise UserError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")
        (inner,) = typing.get_args(tp) or (Any,)
        return [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is type(None):
        if value is not None:
            raise UserError(f"config key {key!r}: expected null, got {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key {key!r}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key {key!r}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key {key!r}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"config key {key!r}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")  # a bug in schema.py


def _build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(fields), n=1, cutoff=0.75)
        if close:  # a misspelling: the one key meant, not the whole section
            raise UserError(f"unknown config key {prefix + unknown[0]!r}; did you mean {prefix + close[0]!r}?")
        known = ", ".join(sorted(fields))
        raise UserError(f"unknown config key {prefix + unknown[0]!r} (known keys here: {known})")
    kwargs = {name: _convert(value, hints[name], prefix + name) for name, value in raw.items()}
    return cls(**kwargs)


def drop_removed_keys(raw: dict, source: str = "config") -> dict:
    """``raw`` without the keys dmt no longer has (``schema.REMOVED_KEYS``), one warning line for each.

    ``source`` names where the dict came from in that line (a file, or ``config``).
    """
    out = copy.deepcopy(raw)
    for dotted, why in REMOVED_KEYS.items():
        *sections, name = dotted.split(".")
        node: Any = out
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and name in node:
            del node[name]
            log.warning("%s: key %r was removed from dmt and is ignored: %s", source, dotted, why)
    return out


def config_from_dict(raw: dict) -> ExperimentConfig:
    """Validate a nested dict and build the config; unknown keys and wrong types are refused
    (keys dmt no longer has are dropped with a warning, :func:`drop_removed_keys`)."""
    return _build(ExperimentConfig, drop_removed_keys(raw))


def load_config(source: str | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Preset name or YAML path (or ``None`` for defaults), then overrides, then validation."""
    return load_config_with_origins(source, overrides)[0]


def load_config_with_origins(
    source: str | None, overrides: list[str] | None = None
) -> tuple[ExperimentConfig, Origins]:
    """As :func:`load_config`, plus where each dotted key came from (file, ``override``; absent: default)."""
    raw: dict = {}
    origins: Origins = {}
    if source is not None:
        raw, origins, _ = read_yaml_with_origins(source)
    overrides = list(overrides or [])
    raw = apply_overrides(raw, overrides)
    mark_overrides(origins, [parse_override(text)[0] for text in overrides])
    cfg = config_from_dict(raw)
    validate_config(cfg)  # values against their meaning, before any caller writes anything
    return cfg, origins


def config_to_dict(cfg: Any) -> dict:
    """The config as plain nested dicts (what ``config.yaml`` and checkpoints record)."""
    return dataclasses.asdict(cfg)


def dump_config(cfg: Any) -> str:
    """YAML text of the resolved config."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = sorted(set(old) | set(new))
    out: list[str] = []
    for k in keys:
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out
