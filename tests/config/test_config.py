"""Config loading: presets, overrides, validation errors that name the key."""

import pytest
import yaml

from dmt.config import config_diff, config_to_dict, dump_config, list_presets, load_config
from dmt.config.loader import config_from_dict
from dmt.config.smoke import SMOKE_STEPS, apply_smoke
from dmt.errors import UserError


def test_every_preset_loads_and_has_a_description():
    presets = list_presets()
    for n in (4, 25, 100, 400):
        for m in ("baseline", "dmt", "cl"):
            assert f"cifar10-{n}-{m}" in presets
    assert "demo-digits" in presets
    for name, desc in presets.items():
        assert desc, f"preset {name} has no description"
        load_config(name)


def test_cifar_presets_match_the_paper():
    c = load_config("cifar10-400-dmt")
    assert (c.baseline.batch_size, c.baseline.lr, c.baseline.epochs) == (512, 0.2, 2120)
    assert (c.baseline.mixup_alpha, c.baseline.weight_decay, c.baseline.schedule) == (0.75, 5e-4, "cosine")
    assert (c.phases.epochs, c.phases.lr, c.phases.batch_labelled, c.phases.batch_pseudo) == (750, 0.1, 16, 496)
    assert (c.phases.gamma1, c.phases.gamma2, c.phases.ramp, c.phases.from_scratch) == (4.0, 4.0, True, True)
    assert c.phases.ratios == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert c.model.name == "wrn_28_2" and c.data.labels_per_class == 400
    cl = load_config("cifar10-4-cl")
    assert cl.method == "dmt" and cl.phases.gamma1 == cl.phases.gamma2 == 0.0
    assert load_config("cifar10-25-baseline").method == "baseline"


def test_overrides_take_precedence_and_are_typed():
    c = load_config("cifar10-4-dmt", ["phases.lr=0.05", "data.root=/x", "phases.ratios=[0.5, 1]", "seed=3"])
    assert c.phases.lr == 0.05 and c.data.root == "/x" and c.phases.ratios == [0.5, 1.0] and c.seed == 3
    assert isinstance(load_config(None, ["phases.lr=1"]).phases.lr, float)


@pytest.mark.parametrize("override, fragment", [
    ("phases.lrr=1", "unknown config key 'phases.lrr'"),
    ("nosuch=1", "unknown config key 'nosuch'"),
    ("phases.lr=fast", "config key 'phases.lr': expected a number"),
    ("seed=1.5", "config key 'seed': expected an integer"),
    ("task=detection", "config key 'task': expected one of"),
    ("data.crop_size=3", "config key 'data.crop_size': expected a list"),
    ("phases.ramp=maybe", "config key 'phases.ramp': expected true or false"),
    ("phases=3", "config key 'phases': expected a section"),
    ("noequals", "must look like dotted.key=value"),
])
def test_bad_config_is_refused_with_the_key_named(override, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        load_config(None, [override])


@pytest.mark.parametrize("override, message", [
    ("data.lables_per_class=3", "unknown config key 'data.lables_per_class'; did you mean 'data.labels_per_class'?"),
    ("phases.gama1=3", "unknown config key 'phases.gama1'; did you mean 'phases.gamma1'?"),
    ("sed=3", "unknown config key 'sed'; did you mean 'seed'?"),
])
def test_a_misspelt_key_is_answered_with_the_key_meant(override, message):
    with pytest.raises(UserError) as caught:
        load_config(None, [override])
    assert str(caught.value) == message  # one key, not the section's whole list


def test_an_unknown_key_unlike_any_lists_the_section():
    with pytest.raises(UserError, match=r"unknown config key 'data.foo' \(known keys here: check, ") as caught:
        load_config(None, ["data.foo=1"])
    assert "did you mean" not in str(caught.value)


def test_yaml_file_and_unknown_source(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("method: baseline\nphases:\n  lr: 0.3\n")
    c = load_config(str(p))
    assert c.method == "baseline" and c.phases.lr == 0.3
    with pytest.raises(UserError, match="neither a preset nor a YAML file"):
        load_config("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(UserError, match="mapping"):
        load_config(str(bad))


def test_dump_round_trip_and_diff():
    c = load_config("cifar10-4-dmt", ["phases.lr=0.05"])
    again = config_from_dict(yaml.safe_load(dump_config(c)))
    assert again == c
    d = config_to_dict(load_config("cifar10-4-dmt"))
    assert config_diff(d, config_to_dict(c)) == ["phases.lr"]


def test_smoke_cuts_every_stage():
    c = apply_smoke(load_config("cifar10-4-dmt"))
    assert c.smoke and c.data.limit > 0
    assert c.baseline.max_steps == c.phases.max_steps == c.oracle.max_steps == SMOKE_STEPS
    assert load_config("cifar10-4-dmt").smoke is False  # a copy, the original is untouched


def test_smoke_shrinks_segmentation_sizes_but_keeps_the_model():
    voc = apply_smoke(load_config("voc-20-dmt"))
    # the config keeps the real model, whose weights file the pre-flight loads; the runner trains
    # its tiny stand-in of the same code (dmt.models.smoke_standin: deeplabv2_tiny)
    assert voc.model.name == "deeplabv2_resnet101"
    assert voc.data.scale == 1 / 8 and voc.data.crop_size == [41, 41] and voc.data.eval_pad == [64, 64]
    assert voc.baseline.batch_size == 2 and voc.phases.batch_labelled == voc.phases.batch_pseudo == 1
    assert voc.data.limit == voc.eval.batch_size == 4 and voc.phases.max_steps == SMOKE_STEPS
    city = apply_smoke(load_config("cityscapes-8-dmt"))
    assert city.data.scale == 0.5 / 8 and city.data.crop_size == [32, 64] and city.data.eval_pad is None
    # small user sizes shrink no further than 32; generated demo scenes keep their size
    small = apply_smoke(load_config("voc-20-dmt", ["data.crop_size=[33, 20]"]))
    assert small.data.crop_size == [32, 20]
    demo = apply_smoke(load_config("demo-digit-scenes"))
    assert demo.data.scale == 0.0 and demo.data.crop_size == load_config("demo-digit-scenes").data.crop_size


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_smoke_of_every_preset_is_small(name):
    """What keeps `--smoke` within minutes on a CPU, for every shipped preset."""
    c = apply_smoke(load_config(name))
    assert c.smoke and c.data.num_workers == 0
    assert c.baseline.max_steps == c.phases.max_steps == c.oracle.max_steps == SMOKE_STEPS
    assert c.baseline.batch_size <= 8 and c.oracle.batch_size <= 8 and c.eval.batch_size <= 8
    assert c.phases.batch_labelled + c.phases.batch_pseudo <= 8
    if c.task == "segmentation":
        assert c.data.limit <= 4 and c.baseline.batch_size <= 2
        if c.data.name in ("voc", "cityscapes"):
            assert c.data.scale <= 1 / 8  # VOC ~63x47, Cityscapes 128x64
            # 64 at most (65: the DINOv2 presets' 518 / 8, rounded up)
            assert max(c.data.crop_size) <= 65 and (c.data.eval_pad is None or max(c.data.eval_pad) <= 64)
