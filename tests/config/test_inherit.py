"""``base:`` inheritance: merge order, parents by preset name or relative path, cycles, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmt.cli.main import main as dmt_main
from dmt.config import config_to_dict, list_presets, load_config
from dmt.config.inherit import PRESET_DIR, deep_merge, origin_of, resolve
from dmt.config.loader import load_config_with_origins
from dmt.errors import UserError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_deep_merge_merges_mappings_and_replaces_everything_else():
    dst = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    origins = {"a.x": "p", "a.y": "p", "b": "p"}
    deep_merge(dst, origins, {"a": {"y": [3]}, "c": {"z": None}}, {"a.y": "c", "c.z": "c"})
    assert dst == {"a": {"x": 1, "y": [3]}, "b": 1, "c": {"z": None}}
    assert origins == {"a.x": "p", "a.y": "c", "b": "p", "c.z": "c"}


def test_parents_merge_in_order_then_the_child(tmp_path):
    _write(tmp_path / "one.yaml", "seed: 1\nphases: {lr: 0.5, epochs: 3}\n")
    _write(tmp_path / "sub" / "two.yaml", "seed: 2\nphases: {lr: 0.25}\n")
    child = _write(tmp_path / "child.yaml", "base: [one.yaml, sub/two.yaml]\nphases: {epochs: 7}\n")
    raw, origins = resolve(child)
    assert raw == {"seed": 2, "phases": {"lr": 0.25, "epochs": 7}}
    assert origins["seed"].endswith("two.yaml") and origins["phases.lr"].endswith("two.yaml")
    assert origins["phases.epochs"] == str(child)
    cfg = load_config(str(child))
    assert (cfg.seed, cfg.phases.lr, cfg.phases.epochs) == (2, 0.25, 7.0)


def test_a_user_file_may_start_from_a_preset(tmp_path):
    mine = _write(tmp_path / "mine.yaml", "base: voc-20-dmt\ndata: {root: /data/voc}\n")
    cfg = load_config(str(mine))
    ref = load_config("voc-20-dmt", ["data.root=/data/voc"])
    assert cfg == ref


def test_chains_resolve_through_every_level(tmp_path):
    _write(tmp_path / "a.yaml", "seed: 1\neval: {batch_size: 3}\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\nseed: 2\n")
    c = _write(tmp_path / "c.yaml", "base: b.yaml\n")
    cfg, origins = load_config_with_origins(str(c), ["eval.batch_size=5"])
    assert (cfg.seed, cfg.eval.batch_size) == (2, 5)
    assert origins["seed"].endswith("b.yaml") and origin_of(origins, "eval.batch_size") == "override"
    assert origin_of(origins, "phases.lr") == "default"


def test_a_cycle_is_one_line_naming_the_file(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    b = _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(UserError, match=r"a\.yaml: base 'b\.yaml' makes a cycle \(b\.yaml -> a\.yaml -> b\.yaml\)"):
        load_config(str(b))
    selfish = _write(tmp_path / "self.yaml", "base: self.yaml\n")
    with pytest.raises(UserError, match="self.yaml: base 'self.yaml' makes a cycle"):
        load_config(str(selfish))


def test_a_missing_or_malformed_parent_is_one_line_naming_the_file(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "base: no-such-preset\n")
    with pytest.raises(UserError, match=r"bad\.yaml: base 'no-such-preset' is neither a preset nor a YAML file"):
        load_config(str(bad))
    wrong = _write(tmp_path / "wrong.yaml", "base: {a: 1}\n")
    with pytest.raises(UserError, match=r"wrong\.yaml: 'base' must be"):
        load_config(str(wrong))


def test_abstract_bases_are_hidden_but_every_preset_uses_one():
    names = list_presets()
    assert names and not any(n.startswith("_") for n in names)
    assert (PRESET_DIR / "_voc.yaml").is_file()
    for name in names:
        if name.startswith("demo-"):
            continue  # the demos are self-contained (nothing to share)
        text = (PRESET_DIR / f"{name}.yaml").read_text()
        assert "\nbase:" in text, name
        assert len(text.splitlines()) <= 10, f"{name} should state only what makes it that experiment"


def _shown(out: str) -> dict[str, tuple[str, str]]:
    """Dotted key -> (value, origin) from `dmt presets --show` output."""
    shown, section = {}, []
    for line in out.splitlines()[1:]:
        depth = (len(line) - len(line.lstrip())) // 2
        section = section[:depth]
        key, rest = line.strip().split(":", 1)
        if not rest:
            section.append(key)
            continue
        value, origin = rest.rsplit("  # ", 1)
        shown[".".join([*section, key])] = (value.strip(), origin)
    return shown


def test_presets_show_prints_each_key_with_its_file(capsys):
    assert dmt_main(["presets", "--show", "voc-8-dms", "phases.lr=0.01"]) == 0
    shown = _shown(capsys.readouterr().out)
    assert shown["mutual.dms"] == ("true", "_dms.yaml")
    assert shown["data.labelled_split"] == ("1/8", "voc-8-dmt.yaml")
    assert shown["data.eval_pad"] == ("[505, 505]", "_voc.yaml")
    assert shown["eval.select"] == ("last", "_deeplabv2.yaml")
    assert shown["phases.lr"] == ("0.01", "override") and shown["baseline.lr"] == ("0.002", "_voc.yaml")
    assert shown["device"] == ("auto", "default") and shown["data.limit"] == ("0", "default")
    assert shown["description"][1] == "voc-8-dms.yaml"
    # every field of the config is shown once
    assert len(shown) == sum(1 for _ in _leaves(config_to_dict(load_config("voc-8-dms"))))


def _leaves(tree: dict):
    for v in tree.values():
        if isinstance(v, dict) and v:
            yield from _leaves(v)
        else:
            yield v
