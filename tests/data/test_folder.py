"""Custom folder layout: classes, palette, split lists, the held-out val split, unlabelled images
and mask checks."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from seg_fixtures import tree_hashes, write_folder_tree

from dmt.data.folder import choose_held_out, folder_source, held_out_val
from dmt.data.segmentation import SegmentationDataset
from dmt.data.voc import voc_colormap
from dmt.errors import UserError


def mask_of(value_rows: list[int], width: int = 12) -> np.ndarray:
    return np.array(value_rows, dtype=np.uint8)[:, None].repeat(width, 1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder_tree(
        tmp_path / "mine",
        labelled={"a": mask_of([0, 1, 2, 255]), "b": mask_of([2, 2, 1, 0]), "c": mask_of([1, 1, 1, 1])},
        unlabelled=["u1", "u2"],
        palette=[(0, 0, 0), (255, 0, 0), (0, 255, 0)],
    )


def test_classes_palette_and_default_splits(folder: Path):
    source = folder_source(folder)
    assert source.class_names == ("background", "cat", "dog") and source.num_classes == 3
    assert source.palette.tolist() == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
    assert set(source.split_names) == {"train", "val", "unlabelled", "all"}
    # no splits/val.txt: round(0.2 * 3) = 1 masked image held out for evaluation, never trained on
    train, val = [i.name for i in source.items("train")], [i.name for i in source.items("val")]
    assert len(val) == 1 and sorted(train + val) == ["a", "b", "c"] and train == sorted(train)
    assert [i.name for i in source.items("unlabelled")] == ["u1", "u2"]
    assert [i.name for i in source.items("all")] == ["a", "b", "c", "u1", "u2"]
    assert all(i.mask is None for i in source.items("unlabelled"))


def test_grey_masks_are_read_as_class_indices(folder: Path):
    source = folder_source(folder)
    sample = SegmentationDataset(source.items("train"), source)[0]
    assert sample["name"] == "a" and sample["image"].shape == (3, 4, 12)
    assert torch.equal(sample["mask"], torch.from_numpy(mask_of([0, 1, 2, 255])).long())


def test_image_without_mask_is_unlabelled(folder: Path):
    source = folder_source(folder)
    items = source.items("unlabelled")
    sample = SegmentationDataset(items, source, with_mask=False)[1]
    assert sample["name"] == "u2" and sample["image"].shape == (3, 16, 20) and "mask" not in sample
    with pytest.raises(UserError, match=r"u1\.png has no mask"):
        SegmentationDataset(items, source)[0]


def test_bad_mask_values_name_the_file_and_values(folder: Path):
    Image.fromarray(mask_of([0, 3, 7, 255])).save(folder / "masks" / "b.png")
    source = folder_source(folder)
    ds = SegmentationDataset(source.items("train"), source)
    ds[0]  # 'a' is fine: checked lazily, per mask read
    with pytest.raises(UserError, match=r"masks/b\.png has values \[3, 7\]"):
        ds[1]


def test_size_mismatch_names_both_files(folder: Path):
    Image.fromarray(mask_of([0, 1, 2], width=12)).save(folder / "masks" / "c.png")
    source = folder_source(folder)
    with pytest.raises(UserError, match=r"masks/c\.png.*3x12.*images/c\.png.*4x12"):
        SegmentationDataset(source.items_from_names(["c"]), source)[0]


def test_colour_masks_are_refused(folder: Path):
    Image.fromarray(np.zeros((4, 12, 3), np.uint8)).save(folder / "masks" / "a.png")
    source = folder_source(folder)
    with pytest.raises(UserError, match=r"masks/a\.png has image mode RGB"):
        SegmentationDataset(source.items("train"), source)[0]


def test_split_lists_and_held_out_val_leaves_default_train(tmp_path: Path):
    root = write_folder_tree(
        tmp_path / "d",
        labelled={k: mask_of([0, 1]) for k in ("a", "b", "c", "d")},
        unlabelled=["u"],
        splits={"val": ["d", "c.png"], "labelled": ["a"]},
        image_ext=".jpg",
    )
    (tmp_path / "extra.txt").write_text("b\nu\n")
    (root / "lists").mkdir()
    (root / "lists" / "few.txt").write_text("# one labelled image\na\n")
    source = folder_source(root, split_files={"unl": tmp_path / "extra.txt", "few": "lists/few.txt"})
    assert [i.name for i in source.items("val")] == ["d", "c"]
    assert [i.name for i in source.items("train")] == ["a", "b"]  # val's images are held out
    assert [i.name for i in source.items("labelled")] == ["a"]
    assert [i.name for i in source.items("unl")] == ["b", "u"]
    assert [i.name for i in source.items("few")] == ["a"]
    assert source.items("all")[0].image == root / "images" / "a.jpg"
    assert [i.name for i in source.items_from_file(tmp_path / "extra.txt")] == ["b", "u"]
    (tmp_path / "typo.txt").write_text("a\nzz\n")
    with pytest.raises(UserError, match=r"no image 'zz'.*typo\.txt"):
        source.items_from_file(tmp_path / "typo.txt")
    with pytest.raises(UserError, match=r"nope\.txt"):
        folder_source(root, split_files={"x": "nope.txt"})


def test_layout_errors_are_clear(tmp_path: Path, folder: Path):
    with pytest.raises(UserError, match="images/"):
        folder_source(tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "images" / "a.jpg")
    with pytest.raises(UserError, match="share the stem 'a'"):
        folder_source(folder)
    (folder / "images" / "a.jpg").unlink()
    (folder / "palette.txt").write_text("0 0 0\n300 0 0\n1 2 3\n")
    with pytest.raises(UserError, match=r"palette\.txt line 2"):
        folder_source(folder)
    (folder / "palette.txt").write_text("0 0 0\n")
    with pytest.raises(UserError, match=r"palette\.txt has 1 colours"):
        folder_source(folder)
    (folder / "palette.txt").unlink()
    assert folder_source(folder).palette.tolist() == voc_colormap(3).tolist()  # default colours
    (folder / "classes.txt").write_text("bg\n\ncat\n")
    with pytest.raises(UserError, match=r"classes\.txt line 2 is empty"):
        folder_source(folder)
    (folder / "classes.txt").unlink()
    with pytest.raises(UserError, match=r"classes\.txt not found"):
        folder_source(folder)


def test_reading_leaves_the_tree_byte_identical(folder: Path):
    before = tree_hashes(folder)
    source = folder_source(folder)
    list(SegmentationDataset(source.items("train"), source))
    ds = SegmentationDataset(source.items("all"), source, with_mask=False)
    list(pickle.loads(pickle.dumps(ds)))
    assert tree_hashes(folder) == before


def test_held_out_val_is_fixed_by_the_names_alone():
    """round(share * n) names (halves up), at least 1, at most n - 1, the same for any order of the
    names and any global seed."""
    names = [f"img{k:02d}" for k in range(10)]
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    first = choose_held_out(names, 0.2)
    random.seed(2)
    shuffled = random.sample(names, len(names))
    assert choose_held_out(shuffled, 0.2) == first and len(first) == 2 and first == sorted(first)
    assert set(first) <= set(names)
    for n, share, count in ((10, 0.25, 3), (10, 0.24, 2), (2, 0.2, 1), (3, 0.9, 2), (30, 0.2, 6), (7, 0.5, 4)):
        assert len(choose_held_out(names[:n] if n <= 10 else [f"x{k}" for k in range(n)], share)) == count
    assert held_out_val(["a", "b"], 0.2, "/data/mine") in (["a"], ["b"])
    for stems in ([], ["a"]):
        with pytest.raises(UserError, match=r"data\.root /data/mine: %d image\(s\) with a mask.*needs at least 2.*"
                           r"add masks, or list your evaluation images in splits/val\.txt" % len(stems)):
            held_out_val(stems, 0.2, "/data/mine")


def test_every_masked_image_is_trained_on_or_held_out_never_both(tmp_path: Path):
    masks = {f"m{k:02d}": mask_of([0, 1, 2]) for k in range(10)}
    root = write_folder_tree(tmp_path / "d", masks, unlabelled=["u1", "u2"], splits={"test": ["m00"]})
    source = folder_source(root, val_share=0.25)
    train, val = source.list_split("train"), source.list_split("val")
    assert len(val) == 2 and "m00" not in val + train  # round(0.25 * 9) of the 9 not listed in test.txt
    assert sorted(train + val) == [f"m{k:02d}" for k in range(1, 10)] and not set(train) & set(val)
    assert val == folder_source(root, val_share=0.25).list_split("val")  # read again: the same
    (root / "splits" / "val.txt").write_text("m01\n")  # a list of its own: nothing held out beyond it
    source = folder_source(root)
    assert source.list_split("val") == ["m01"] and len(source.list_split("train")) == 8
    with pytest.raises(UserError, match=r"val_share must be in \(0, 1\)"):
        folder_source(root, val_share=1.0)


def test_a_lossy_mask_is_refused_naming_it(folder: Path):
    Image.fromarray(mask_of([0, 1, 2, 1])).save(folder / "masks" / "u1.webp", lossless=False)
    with pytest.raises(UserError, match=r"mask .*masks/u1\.webp: masks must be lossless single-channel PNG") as info:
        folder_source(folder)
    assert "\n" not in str(info.value)
    Image.fromarray(mask_of([0, 1, 2, 1])).save(folder / "masks" / "u1.png")  # its PNG beside it: the PNG is read
    assert folder_source(folder).make_item("u1").mask == folder / "masks" / "u1.png"
