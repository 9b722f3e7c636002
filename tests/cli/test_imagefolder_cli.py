"""Your own images end to end through the command line (``data.name: imagefolder``).

A fabricated tree in the layout users have (``labelled/<class>/...`` in mixed modes and sizes,
nested ``unlabelled/...``, ``val/`` and ``test/``, hidden files) goes through ``dmt run --smoke``
of ``imagefolder-dinov2`` (the ViT trains as its tiny stand-in; read at 28 px to stay quick) and
then every tool: ``check``, ``status``, ``report``, ``eval``, ``predict``, ``export``. List files
naming the same images give the same run; a pre-flight mistake stops ``dmt run`` before any stage;
without ``--smoke`` an empty offline hub cache stops it in one line naming the file. The tree is
byte-identical after every command. Benchmark mode (``train/<class>/...``) is in
``test_imagefolder_benchmark_cli.py``.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

import dmt
from dmt.cli.main import main
from dmt.config.schema import DataConfig
from dmt.data.class_folders import load_imagefolder
from dmt.models.files import load_model
from dmt.report import load_run

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from class_tree_fixtures import tree, tree_state  # noqa: E402
from export_fixtures import needs_onnx  # noqa: E402

CLASSES = ["Dog", "bird", "cat"]  # sorted as torchvision sorts them: "D" before "b"
STAGES = ["baseline", "phase1", "phase2", "phase3", "phase4", "phase5"]
SIZE = "data.image_size=28"  # the preset's 224 costs seconds a step even for the stand-in
# labelled/ in torchvision's ImageFolder order (class by class, folder by folder, file by name)
LABELLED = [("labelled/Dog/d.jpeg", 0), ("labelled/Dog/e.png", 0), ("labelled/Dog/rgba.png", 0),
            ("labelled/bird/c.png", 1), ("labelled/bird/grey.png", 1),
            ("labelled/cat/a.png", 2), ("labelled/cat/z.png", 2), ("labelled/cat/z/cmyk.jpg", 2),
            ("labelled/cat/z/deep/b.JPG", 2)]
UNLABELLED = ["unlabelled/a.png", "unlabelled/p.png", "unlabelled/turned.jpg", "unlabelled/u.png",
              "unlabelled/x/w.png", "unlabelled/x/y/v.jpg", "unlabelled/x/y/wide16.png"]
VAL = [("val/Dog/v2.png", "Dog"), ("val/cat/v1.png", "cat")]
TEST = [("test/bird/t1.png", "bird"), ("test/cat/t0.png", "cat"), ("test/cat/t2.png", "cat")]
DATA_LINE = "data imagefolder: 9 labelled, 7 unlabelled, 0 valtiny, 2 val, 3 test"


def photo_tree(root: Path) -> Path:
    """``class_tree_fixtures.tree`` (nesting, an upper-case extension, hidden files) plus images of
    other modes and sizes: grey, RGBA, CMYK, palette, 16-bit grey, EXIF-rotated."""
    tree(root)
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (20, 13), np.uint8), "L").save(root / "labelled/bird/grey.png")
    Image.fromarray(rng.integers(0, 256, (9, 30, 4), np.uint8), "RGBA").save(root / "labelled/Dog/rgba.png")
    Image.fromarray(rng.integers(0, 256, (12, 12, 3), np.uint8)).convert("CMYK").save(root / "labelled/cat/z/cmyk.jpg")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8)).convert("P").save(root / "unlabelled/p.png")
    Image.fromarray(rng.integers(0, 65536, (7, 40), np.uint16)).save(root / "unlabelled/x/y/wide16.png")
    turned = Image.fromarray(rng.integers(0, 256, (10, 16, 3), np.uint8))
    exif = turned.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to show upright
    turned.save(root / "unlabelled/turned.jpg", exif=exif)
    return root


def run(*args: str) -> int:
    return main([*args])


def error_line(capsys) -> str:
    """The command's one error line (stderr's last; the log lines before it start with a time)."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error")]
    assert errors == lines[-1:] and errors[0].startswith("error: "), lines
    return errors[0]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The tree, a ``--smoke`` run of every stage on it, and the tree's state before the run."""
    base = tmp_path_factory.mktemp("imagefolder")
    root = photo_tree(base / "photos")
    before = tree_state(root)
    out = base / "run"
    assert run("run", "imagefolder-dinov2", f"data.root={root}", SIZE, "--smoke", "--out", str(out)) == 0
    return root, out, before


def test_a_smoke_run_writes_every_stage_and_the_split_the_folders_say(folder_run):
    root, out, before = folder_run
    assert tree_state(root) == before  # the dataset is read-only to dmt
    results = json.loads((out / "results.json").read_text())
    assert results["plan"] == STAGES and [s["name"] for s in results["stages"]] == STAGES and results["smoke"]
    for stage in results["stages"]:
        assert 0 <= stage["metrics"]["accuracy"] <= 1 and 0 <= stage["metrics"]["val_accuracy"] <= 1
        _, meta = load_model(out / stage["checkpoint"])
        assert meta["stage"] == stage["name"] and meta["classes"] == CLASSES and meta["image_size"] == 28
    log = (out / "log.txt").read_text()
    assert DATA_LINE in log and "tiny stand-in" in log
    # the recorded split, read through the pool the run read: labelled/ exactly, with its folders' classes
    pool = load_imagefolder(DataConfig(name="imagefolder", root=str(root))).train
    labelled = [int(i) for i in (out / "splits" / "labelled.txt").read_text().split()]
    unlabelled = [int(i) for i in (out / "splits" / "unlabelled.txt").read_text().split()]
    assert [(pool.paths[i], int(pool.labels[i])) for i in labelled] == [(root / p, k) for p, k in LABELLED]
    assert sorted(pool.paths[i] for i in unlabelled) == [root / p for p in UNLABELLED]
    assert (out / "splits" / "valtiny.txt").read_text() == ""
    # the same split by file, for people: "path<TAB>class", unlabelled images without a class
    by_file = [line.split("\t") for line in (out / "splits" / "labelled_files.txt").read_text().splitlines()]
    assert by_file == [[str(root / p), CLASSES[k]] for p, k in LABELLED]
    unlabelled_files = (out / "splits" / "unlabelled_files.txt").read_text().splitlines()
    assert sorted(unlabelled_files) == sorted(f"{root / p}\t" for p in UNLABELLED)


def test_every_tool_reads_the_run_and_the_tree(folder_run, tmp_path, capsys, eval_read_sizes):
    root, out, before = folder_run
    model = out / "stages" / "phase5" / "model.safetensors"
    results = {s["name"]: s["metrics"] for s in json.loads((out / "results.json").read_text())["stages"]}
    capsys.readouterr()

    # the same command again: every stage is done, nothing is retrained
    recorded = (out / "results.json").read_text()
    assert run("run", "imagefolder-dinov2", f"data.root={root}", SIZE, "--smoke", "--out", str(out)) == 0
    assert json.loads((out / "results.json").read_text())["stages"] == json.loads(recorded)["stages"]
    capsys.readouterr()

    assert run("check", "imagefolder-dinov2", f"data.root={root}", "--smoke", "--full") == 0
    summary = "ok: 9 labelled images in 3 classes, 7 unlabelled, 2 val, 3 test (decoded)"
    assert capsys.readouterr().out.strip() == summary

    assert run("status", str(out)) == 0
    printed = capsys.readouterr().out
    assert "finished" in printed and all(f"done        {s}" in printed for s in STAGES)

    assert run("report", str(out)) == 0
    assert ">6 / 6<" in (out / "report.html").read_text()  # stages done
    assert load_run(out).class_names == CLASSES  # its figures name the folders' classes (from the model files)

    for split, key, images in ((None, "accuracy", 3), ("val", "val_accuracy", 2)):
        capsys.readouterr()
        assert run("eval", str(model), "--data", "imagefolder", "--root", str(root), "--device", "cpu",
                   *(["--split", split] if split else [])) == 0
        scored = json.loads(capsys.readouterr().out)
        assert scored["split"] == (split or "test") and scored["images"] == images
        assert scored["accuracy"] == pytest.approx(results["phase5"][key])
    assert eval_read_sizes == [28, 28]  # the model's size, not imagefolder's default 96

    pred = tmp_path / "pred"
    assert run("predict", str(model), str(root / "test"), "--out", str(pred), "--device", "cpu") == 0
    with open(pred / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["file"]) for r in rows) == [root / p for p, _ in TEST]
    for r in rows:
        top = [entry.split(":")[0] for entry in r["top_k"].split(";")]
        assert sorted(top) == sorted(CLASSES) and top[0] == r["class_name"] == CLASSES[int(r["class"])]
    # the Python API: the folders' class names and the trained size, any image mode
    loaded = dmt.load_model(model, device="cpu")
    assert loaded.class_names == tuple(CLASSES) and loaded.size == 28
    with Image.open(root / "labelled/Dog/rgba.png") as rgba:
        assert loaded.predict(rgba).label in CLASSES
    assert tree_state(root) == before


@needs_onnx
def test_export_to_onnx(folder_run, tmp_path):
    _, out, _ = folder_run
    onnx = tmp_path / "model.onnx"
    assert run("export", str(out / "stages" / "phase5" / "model.safetensors"), "--format", "onnx",
               "--out", str(onnx)) == 0
    assert onnx.stat().st_size > 0


def _list_file(path: Path, rows: list[tuple[str, str]], root: Path) -> Path:
    """A CSV naming the tree's files relative to the CSV's own folder, rows shuffled, with a header."""
    rows = list(rows)
    random.Random(3).shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows((f"../{root.name}/{p}", label) for p, label in rows)
    return path


def test_list_files_equal_the_folder_layout(folder_run, tmp_path, capsys):
    root, out, before = folder_run
    lists = root.parent / "lists"  # beside the tree: the tree itself stays untouched
    train = _list_file(lists / "train.csv", [(p, CLASSES[k]) for p, k in LABELLED] + [(p, "") for p in UNLABELLED],
                       root)
    val, test = _list_file(lists / "val.csv", VAL, root), _list_file(lists / "test.csv", TEST, root)
    listed = tmp_path / "run"
    assert run("run", "imagefolder-dinov2", f"data.train_csv={train}", f"data.val_csv={val}",
               f"data.test_csv={test}", SIZE, "method=baseline", "--smoke", "--out", str(listed)) == 0
    for name in ("labelled", "unlabelled", "valtiny"):
        assert (listed / "splits" / f"{name}.txt").read_text() == (out / "splits" / f"{name}.txt").read_text()
    assert DATA_LINE in (listed / "log.txt").read_text()
    # the same images in the same order: the baseline trains to the same weights and scores
    ours, theirs = (load_file(str(r / "stages" / "baseline" / "model.safetensors")) for r in (listed, out))
    assert ours.keys() == theirs.keys() and all(bool((ours[k] == theirs[k]).all()) for k in ours)
    assert tree_state(root) == before


def _truncated_jpeg(root: Path) -> tuple[str, Path]:
    bad = root / "unlabelled/x/y/big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:700])  # the header opens; the pixels stop short
    return "data.check=full", bad


def _copy_in_unlabelled(root: Path) -> tuple[str, Path]:
    shutil.copyfile(root / "labelled/cat/a.png", root / "unlabelled/x/copy.png")
    return "data.check=headers", root / "unlabelled/x/copy.png"


def _empty_class(root: Path) -> tuple[str, Path]:
    (root / "labelled/horse").mkdir()
    return "data.check=headers", root / "labelled/horse"


@pytest.mark.parametrize("spoil", [_truncated_jpeg, _copy_in_unlabelled, _empty_class])
def test_a_preflight_mistake_stops_the_run_before_any_stage(spoil, tmp_path, capsys):
    root = tree(tmp_path / "photos")
    check, named = spoil(root)
    before = tree_state(root)
    out = tmp_path / "run"
    assert run("run", "imagefolder-dinov2", f"data.root={root}", SIZE, check, "--smoke", "--out", str(out)) == 2
    assert str(named) in error_line(capsys)
    assert not out.exists() and tree_state(root) == before


def test_headers_only_a_truncated_file_stops_the_run_where_it_is_read(tmp_path, capsys):
    """The default check reads headers; the truncated pixels are met when phase 1 labels the
    unlabelled images: one line naming the file, the finished baseline kept."""
    root = tree(tmp_path / "photos")
    _, bad = _truncated_jpeg(root)
    out = tmp_path / "run"
    assert run("run", "imagefolder-dinov2", f"data.root={root}", SIZE, "--smoke", "--out", str(out)) == 2
    assert f"cannot read image {bad}" in error_line(capsys)
    assert (out / "stages" / "baseline" / "model.safetensors").is_file()
    assert not (out / "stages" / "phase1" / "model.safetensors").exists()


def test_the_oracle_is_refused_at_start_where_unlabelled_images_have_no_label(folder_run, tmp_path, capsys):
    root, _, before = folder_run
    out = tmp_path / "run"
    assert run("run", "imagefolder-dinov2", f"data.root={root}", SIZE, "oracle.enabled=true", "--smoke",
               "--out", str(out)) == 2
    line = error_line(capsys)
    assert "'oracle.enabled'" in line and "the 7 images of unlabelled/" in line and "oracle.enabled=false" in line
    assert not out.exists()  # the pre-flight refuses it before the run directory is made
    assert tree_state(root) == before


def test_without_smoke_an_empty_offline_hub_cache_stops_the_run_naming_the_file(hub_cache, tmp_path, capsys,
                                                                                 monkeypatch):
    root = tree(tmp_path / "photos")
    before = tree_state(root)
    out = tmp_path / "run"
    url = "https://huggingface.co/timm/vit_small_patch14_dinov2.lvd142m/resolve/main/model.safetensors"
    assert run("run", "imagefolder-dinov2", f"data.root={root}", "--out", str(out)) == 2
    line = error_line(capsys)
    assert "config key 'model.weights'" in line and url in line and "HF_HUB_OFFLINE" in line
    assert "model.weights=FILE" in line
    assert not out.exists() and tree_state(root) == before

    # online but the hub cannot be reached: said so, not "the repository has no model.safetensors"
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(repo_id, filename):
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub and we cannot "
                                      "find the requested files in the local cache.")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    monkeypatch.setattr("dmt.models.backbones.hub.hub_offline", lambda: False)
    assert run("run", "imagefolder-dinov2", f"data.root={root}", "--out", str(out)) == 2
    line = error_line(capsys)
    assert "cannot be reached" in line and "has no model.safetensors" not in line and url in line
    assert not out.exists()


def test_without_val_or_test_a_share_of_each_class_is_held_out_recorded_and_scored(tmp_path):
    """No val/ and no test/: one image of each class (round(0.2 * n), at least 1) is held out of
    labelled/, scored as val by every stage, recorded in splits/val_files.txt, never trained on."""
    root = photo_tree(tmp_path / "photos")
    for name in ("val", "test"):
        shutil.rmtree(root / name)
    out = tmp_path / "run"
    assert run("run", "imagefolder-dinov2", f"data.root={root}", SIZE, "phases.ratios=[1.0]", "--smoke",
               "--out", str(out)) == 0
    stages = json.loads((out / "results.json").read_text())["stages"]
    assert all(0 <= s["metrics"]["val_accuracy"] <= 1 and "accuracy" not in s["metrics"] for s in stages)
    val = [line.split("\t") for line in (out / "splits" / "val_files.txt").read_text().splitlines()]
    labelled = [line.split("\t") for line in (out / "splits" / "labelled_files.txt").read_text().splitlines()]
    assert sorted(c for _, c in val) == CLASSES  # one of each class
    assert sorted(map(tuple, val + labelled)) == sorted((str(root / p), CLASSES[k]) for p, k in LABELLED)
    log = (out / "log.txt").read_text()
    assert ("data imagefolder: 6 labelled, 7 unlabelled, 0 valtiny, 3 val (held out: 20% of each class's labelled "
            "images, as there is no val or test set), no test") in log
