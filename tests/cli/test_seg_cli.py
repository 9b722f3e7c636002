"""`dmt run <voc|cityscapes preset> --smoke` end to end on tiny official-layout trees, and `dmt eval`."""

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from dmt.cli.main import main
from dmt.config.smoke import SMOKE_SEG_IMAGES, SMOKE_SHRINK
from dmt.predict.evaluate import run_eval_overrides

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import tree_hashes, write_cityscapes_tree, write_voc_tree  # noqa: E402

TRAIN_AUG = [f"2007_{i:06d}" for i in range(40)]  # 1/20 labels 2 of them
SMALL = ["model.name=deeplabv2_tiny", "data.crop_size=[33, 33]", "data.num_workers=0"]


@pytest.fixture
def voc_root(tmp_path):
    return write_voc_tree(tmp_path / "voc", splits={"train_aug": TRAIN_AUG, "train": TRAIN_AUG[:4],
                                                    "val": ["2008_000001", "2008_000002"]})


def test_voc_dmt_smoke_end_to_end(voc_root, tmp_path, capsys):
    before = tree_hashes(voc_root.parents[1])
    out = tmp_path / "run"
    missing = tmp_path / "coco.safetensors"
    args = ["run", "voc-20-dmt", f"data.root={voc_root}", f"model.weights={missing}", *SMALL,
            "data.eval_pad=[40, 40]", "--smoke", "--out", str(out)]
    assert main(args) == 0
    assert tree_hashes(voc_root.parents[1]) == before  # nothing written into the dataset

    results = json.loads((out / "results.json").read_text())
    names = [s["name"] for s in results["stages"]]
    assert names[:4] == ["baseline-a", "baseline-b", "phase1-a", "phase1-b"] and names[-1] == "phase5-b"
    by_name = {s["name"]: s for s in results["stages"]}
    assert by_name["phase1-a"]["teacher"] == "baseline-b" and by_name["phase1-b"]["teacher"] == "baseline-a"
    assert by_name["phase2-a"]["init_from"] == "phase1-a"
    for s in results["stages"]:
        m = s["metrics"]
        assert 0.0 <= m["miou"] <= 1.0 and len(m["per_class_iou"]) == 21
    p = by_name["phase3-a"]["metrics"]
    assert len(p["thresholds"]) == 21 and len(p["kept_per_class"]) == 21 and 0 < p["pseudo_share"] <= 1
    assert by_name["phase5-a"]["metrics"]["pseudo_share"] == 1.0
    assert (out / "stages" / "phase1-a" / "thresholds.json").is_file()
    assert not (out / "stages" / "phase1-a" / "labels").exists()  # dropped once the phase finished
    log = (out / "log.txt").read_text()
    assert "coco.safetensors" in log  # the missing COCO weights were named in a warning
    assert (out / "splits" / "labelled-a.txt").read_text() == (out / "splits" / "labelled-b.txt").read_text()

    # the same config without --smoke refuses to start without the pretrained weights
    code = main(["run", "voc-20-dmt", f"data.root={voc_root}", f"model.weights={missing}", *SMALL,
                 "--out", str(tmp_path / "real")])
    assert code == 2 and "coco.safetensors" in capsys.readouterr().err

    # dmt eval on a phase checkpoint reproduces the run's val mIoU
    capsys.readouterr()
    # (at the smoke's sizes: images read at 1/8, evaluation padding 40 shrunk to its floor of 32,
    # in black as the VOC presets pad), given on the command line ...
    model = out / "stages/phase5-a/model.safetensors"
    assert main(["eval", str(model), "--data", "voc", "--root", str(voc_root), f"scale={1 / SMOKE_SHRINK}",
                 "eval_pad=[32, 32]", "pad_fill=black", "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["miou"] == pytest.approx(by_name["phase5-a"]["metrics"]["miou"], abs=1e-6)
    # ... or taken from the run directory the model file sits in
    assert run_eval_overrides(model, "voc") == ["data.eval_pad=[32, 32]", "data.pad_fill=black",
                                                f"data.scale={1 / SMOKE_SHRINK}", "data.max_pixels=89478485",
                                                "eval.max_side=1024",
                                                "train.channels_last=auto"]
    assert run_eval_overrides(model, "cityscapes") == []  # another dataset: nothing of the run's applies
    assert main(["eval", str(model), "--data", "voc", "--root", str(voc_root), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["miou"] == scores["miou"]
    elsewhere = tmp_path / "model.safetensors"
    elsewhere.write_bytes(model.read_bytes())
    assert run_eval_overrides(elsewhere, "voc") == []


def test_voc_dms_subsets_differ(voc_root, tmp_path):
    out = tmp_path / "dms"
    assert main(["run", "voc-8-dms", f"data.root={voc_root}", *SMALL, "data.eval_pad=[40, 40]",
                 "model.weights=none.safetensors", "mutual.weights_b=none.safetensors", "--smoke",
                 "--out", str(out), "phases.ratios=[1.0]"]) == 0
    a = (out / "splits" / "labelled-a.txt").read_text().split()
    b = (out / "splits" / "labelled-b.txt").read_text().split()
    assert a != b and set(a) & set(b)


def test_cityscapes_dmt_smoke_end_to_end(tmp_path):
    root = write_cityscapes_tree(tmp_path / "city", cities={"train": {"aachen": 9, "bremen": 8},
                                                           "val": {"frankfurt": 2}}, size=(32, 64))
    before = tree_hashes(root)
    out = tmp_path / "run"
    assert main(["run", "cityscapes-8-dmt", f"data.root={root}", *SMALL, "model.weights=missing.safetensors",
                 "--smoke", "--out", str(out)]) == 0
    assert tree_hashes(root) == before
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]][-1] == "phase5-b"
    assert all(len(s["metrics"]["per_class_iou"]) == 19 for s in results["stages"])
    assert results["summary"]["metric"] == "miou"


@pytest.mark.parametrize("method", ["dst", "cbst", "naive", "flip", "online"])
def test_ablation_presets_run(method, voc_root, tmp_path):
    out = tmp_path / method
    assert main(["run", f"voc-50-abl-{method}", f"data.root={voc_root}", *SMALL, "data.eval_pad=[40, 40]",
                 "model.weights=none.safetensors", "mutual.weights_b=none.safetensors", "data.split_set=0",
                 "data.labelled_split=1/8", "phases.ratios=[0.5, 1.0]", "--smoke", "--out", str(out)]) == 0
    names = [s["name"] for s in json.loads((out / "results.json").read_text())["stages"]]
    two = method in ("naive", "flip")
    assert names[0] == ("baseline-a" if two else "baseline")
    assert any(n.startswith("phase2" if method != "online" else "phase1") for n in names)


def test_custom_folder_with_own_lists_and_heldout_selection(tmp_path):
    import numpy as np
    from seg_fixtures import write_folder_tree

    rng = np.random.default_rng(0)
    masks = {f"img{i:02d}": rng.integers(0, 3, (16, 20)).astype(np.uint8) for i in range(10)}
    root = write_folder_tree(tmp_path / "mine", masks, unlabelled=["u0", "u1", "u2"],
                             splits={"val": ["img08", "img09"]})
    (tmp_path / "labelled.txt").write_text("img00\nimg01\nimg02\nimg03\n")
    before = tree_hashes(root)
    out = tmp_path / "run"
    assert main(["run", "voc-8-dmt", "data.name=folder", f"data.root={root}", "model.name=tiny_unet",
                 "model.init=none", "model.kwargs={}", "mutual.init_b=none", "data.crop_size=[16, 16]", "data.eval_pad=null",
                 f"data.labelled_list={tmp_path / 'labelled.txt'}", "eval.select=heldout", "eval.heldout=1",
                 "phases.ratios=[1.0]", "--smoke", "--out", str(out)]) == 0
    assert tree_hashes(root) == before
    results = json.loads((out / "results.json").read_text())
    stages = {s["name"]: s for s in results["stages"]}
    assert all(len(s["metrics"]["per_class_iou"]) == 3 for s in stages.values())
    assert "selected_epoch" in stages["baseline-a"]["metrics"]  # chosen on the held-out image
    assert (out / "splits" / "heldout-a.txt").read_text().split() == ["img03"]
    assert (out / "splits" / "labelled-a.txt").read_text().split() == ["img00", "img01", "img02"]
    unlabelled = (out / "splits" / "unlabelled.txt").read_text().split()
    # everything neither labelled nor val, masked or not, cut to the smoke's image limit
    pool = {"img04", "img05", "img06", "img07", "u0", "u1", "u2"}
    assert set(unlabelled) <= pool and len(unlabelled) == min(len(pool), SMOKE_SEG_IMAGES)


def test_unknown_names_in_a_user_list_are_refused(voc_root, tmp_path, capsys):
    bad = tmp_path / "lab.txt"
    bad.write_text("2007_000001\nnot_an_image\n")
    assert main(["run", "voc-8-dmt", f"data.root={voc_root}", f"data.labelled_list={bad}", *SMALL, "--smoke",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "lab.txt" in err and "not_an_image" in err


def test_folder_dmt_smoke_keeps_every_mask_and_evaluates_on_held_out_ones(tmp_path, capsys):
    """The own-data command, `dmt run folder-dmt data.root=...`, on a folder without splits/val.txt:
    2 of the 10 masked images held out as val, the other 8 labelled, the 20 others unlabelled."""
    import numpy as np
    from seg_fixtures import write_folder_tree

    rng = np.random.default_rng(0)
    masks = {f"img{i:02d}": rng.integers(0, 3, (16, 20)).astype(np.uint8) for i in range(10)}
    root = write_folder_tree(tmp_path / "mine", masks, unlabelled=[f"u{i:02d}" for i in range(20)])
    out = tmp_path / "run"
    assert main(["run", "folder-dmt", f"data.root={root}", "model.name=tiny_unet", "model.init=none",
                 "model.kwargs={}", "mutual.init_b=none", "data.crop_size=[16, 16]", "data.num_workers=0",
                 "phases.ratios=[1.0]", "--smoke", "--out", str(out)]) == 0
    val = (out / "splits" / "val.txt").read_text().split()
    labelled = (out / "splits" / "labelled-a.txt").read_text().split()
    assert len(val) == 2 and labelled and not set(val) & set(labelled) and set(val + labelled) <= set(masks)
    assert ("data folder: 10 masked images -> 8 labelled, 2 val (held out, data.val_share 0.2: no splits/val.txt); "
            f"20 without a mask -> unlabelled; --smoke uses the first {SMOKE_SEG_IMAGES} of each"
            in (out / "log.txt").read_text())
    Image.fromarray(masks["img00"]).save(root / "masks" / "u00.webp", lossless=False)
    capsys.readouterr()
    assert main(["check", "folder-dmt", f"data.root={root}", "--smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: mask ") and "u00.webp: masks must be lossless single-channel PNG" in err[-1]
