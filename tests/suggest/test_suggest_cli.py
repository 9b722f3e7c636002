"""``dmt suggest`` end to end on a run directory made by hand (random last-phase members, a folder dataset)."""

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

from dmt.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from suggest_fixtures import CLASSES, fake_run, folder_dataset, smooth_image  # noqa: E402


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode() + (p.read_bytes() if p.is_file() else b""))
    return h.hexdigest()


@pytest.fixture
def dataset(tmp_path):
    return folder_dataset(tmp_path / "data", {f"im{i}": smooth_image(i) for i in range(5)})


def test_suggest_ranks_a_two_member_run_and_drafts_the_chosen(dataset, tmp_path, capsys):
    pytest.importorskip("pycocotools")
    pytest.importorskip("skimage")
    run = fake_run(tmp_path / "run", dataset, ["im0", "im1", "im2", "im3"])
    before = tree_hash(dataset)
    out = tmp_path / "out"
    assert main(["suggest", str(run), "--count", "2", "--out", str(out), "--drafts", "coco", "cvat", "labelstudio",
                 "--device", "cpu", "--min-area", "1"]) == 0
    assert "suggested 2 of 4" in capsys.readouterr().out
    assert tree_hash(dataset) == before  # nothing written into the dataset
    rows = list(csv.DictReader((out / "suggestions.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2"] and {r["image"] for r in rows} <= {"im0", "im1", "im2", "im3"}
    assert all(r["disagreement"] != "" for r in rows)
    assert float(rows[0]["score"]) >= float(rows[1]["score"])
    coco = json.loads((out / "drafts" / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == [f"{r['image']}.png" for r in rows]
    assert [c["name"] for c in coco["categories"]] == list(CLASSES[1:])
    assert (out / "drafts" / "cvat" / "SegmentationClass" / f"{rows[0]['image']}.png").is_file()
    tasks = json.loads((out / "drafts" / "labelstudio.json").read_text())
    assert [t["data"]["image"] for t in tasks] == [f"{r['image']}.png" for r in rows]
    assert (out / "contact_sheet.png").stat().st_size > 0


def test_images_draft_any_list_and_one_member_runs(dataset, tmp_path):
    pytest.importorskip("pycocotools")
    pytest.importorskip("skimage")
    run = fake_run(tmp_path / "run", dataset, ["im0", "im1"], members=("",))
    listed = tmp_path / "list.txt"
    listed.write_text(f"{dataset / 'images' / 'im4.png'}\n")
    assert main(["suggest", str(run), "--images", str(listed), "--drafts", "coco", "--out", str(tmp_path / "d"),
                 "--device", "cpu"]) == 0
    coco = json.loads((tmp_path / "d" / "drafts" / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["im4.png"]
    assert main(["suggest", str(run), "--count", "1", "--out", str(tmp_path / "one"), "--device", "cpu"]) == 0
    row = next(csv.DictReader((tmp_path / "one" / "suggestions.csv").open()))
    assert row["disagreement"] == ""  # one member: no disagreement term


@pytest.mark.parametrize("args, message", [
    (["--drafts", "yolo"], "--drafts yolo: expected one or more of coco, cvat, labelstudio"),
    (["--weight", "novelty=2"], "--weight 'novelty=2': expected TERM=NUMBER"),
    (["--count", "0"], "--count, --batch-size and --min-area must be at least 1"),
])
def test_bad_options_are_one_line(dataset, tmp_path, capsys, args, message):
    run = fake_run(tmp_path / "run", dataset, ["im0"])
    assert main(["suggest", str(run), "--out", str(tmp_path / "o"), "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    assert main(["suggest", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "config.yaml: not found (dmt suggest reads a segmentation run directory)" in capsys.readouterr().err


@pytest.mark.slow
def test_suggest_on_a_two_member_smoke_run_of_the_digit_scenes(tmp_path, capsys):
    """A real `dmt run --smoke` directory (stage names, config.yaml, generated images): ranked and drafted."""
    run = tmp_path / "run"
    assert main(["run", "demo-digit-scenes", "--smoke", "--out", str(run), "phases.ratios=[1.0]",
                 "data.num_scenes=40", "data.val_scenes=4", "oracle.enabled=false"]) == 0
    unlabelled = (run / "splits" / "unlabelled.txt").read_text().split()
    assert main(["suggest", str(run), "--count", "2", "--out", str(tmp_path / "out"), "--drafts", "cvat",
                 "--device", "cpu"]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "suggestions.csv").open()))
    assert len(rows) == 2 and {r["image"] for r in rows} <= set(unlabelled)
    assert all(r["disagreement"] != "" for r in rows)  # two members: phase1-a and phase1-b
    # the scenes exist only in memory: the drafts write them beside the masks
    for r in rows:
        assert (tmp_path / "out" / "drafts" / "images" / f"{r['image']}.png").is_file()
        assert (tmp_path / "out" / "drafts" / "cvat" / "SegmentationClass" / f"{r['image']}.png").is_file()
