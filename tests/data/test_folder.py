"""Custom folder layout: classes, palette, split lists, unlabelled images and mask checks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from seg_fixtures import tree_hashes, write_folder_tree

from dmt.data.folder import folder_source
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
    assert set(source.split_names) == {"train", "unlabelled", "all"}
    assert [i.name for i in source.items("train")] == ["a", "b", "c"]
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
        SegmentationDataset(source.items("train"), source)[2]


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
