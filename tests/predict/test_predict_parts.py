"""dmt predict's parts: finding inputs, naming outputs, rendering masks/overlays/rows, class metadata."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dmt.errors import UserError
from dmt.predict.inputs import collect_inputs, read_rgb
from dmt.predict.meta import resolve_meta
from dmt.predict.render import (
    blend,
    classes_present,
    classification_row,
    confidence_image,
    overlay_with_legend,
    palette_mask,
)


def _png(path, h=5, w=7, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def test_inputs_from_folders_list_files_and_files_with_unique_names(tmp_path):
    _png(tmp_path / "photos" / "b.png")
    _png(tmp_path / "photos" / "2024" / "a.jpg")
    _png(tmp_path / "photos" / "2024" / "a.png")
    (tmp_path / "photos" / "notes.md").write_text("not an image")
    _png(tmp_path / "other" / "c.bmp")
    (tmp_path / "list.txt").write_text("# mine\nother/c.bmp\n\n")
    single = _png(tmp_path / "single.webp")
    found = collect_inputs([str(tmp_path / "photos"), str(tmp_path / "list.txt"), str(single)])
    assert [i.name for i in found] == ["2024/a_jpg", "2024/a_png", "b", "other/c", "single"]
    # the same file named twice is predicted once
    again = collect_inputs([str(single), str(single)])
    assert len(again) == 1


def _folder_dataset(root, classes=True):
    """A segmentation folder dataset (dmt.data.folder): 2 images, 1 mask, classes.txt, a split."""
    _png(root / "images" / "a.jpg")
    _png(root / "images" / "b.png")
    _png(root / "masks" / "a.png", value=1)
    if classes:
        (root / "classes.txt").write_text("background\ncat\n")
    (root / "splits").mkdir()
    (root / "splits" / "val.txt").write_text("a\n")
    return root


@pytest.mark.parametrize("classes", [True, False])
def test_a_folder_dataset_root_gives_its_images_only(tmp_path, caplog, classes):
    root = _folder_dataset(tmp_path / "data", classes)
    with caplog.at_level("INFO", logger="dmt"):
        found = collect_inputs([str(root)])
    assert [(i.path, i.name) for i in found] == [(root / "images" / "a.jpg", "a"), (root / "images" / "b.png", "b")]
    assert "predicting its images/ only, 2 image(s)" in caplog.text


def test_masks_folders_and_earlier_outputs_are_left_out_of_a_plain_folder(tmp_path, caplog):
    _png(tmp_path / "photos" / "x.png")
    _png(tmp_path / "photos" / "masks" / "x.png")  # labels beside the photos, no images/ folder
    _png(tmp_path / "photos" / "trip" / "masks" / "y.png")
    _png(tmp_path / "photos" / "pred" / "overlays" / "x.png")  # a first run's outputs inside the input
    _png(tmp_path / "photos" / "pred" / "probs" / "x.png")
    with caplog.at_level("INFO", logger="dmt"):
        found = collect_inputs([str(tmp_path / "photos")], tmp_path / "photos" / "pred")
    assert [i.name for i in found] == ["x"]
    assert "left out 2 file(s) in masks/ folders" in caplog.text
    assert "left out 2 file(s) a prediction wrote" in caplog.text
    # without --out inside the folder the overlays are photos like any; named directly, masks/ is predicted
    assert [i.name for i in collect_inputs([str(tmp_path / "photos")])] == ["pred/overlays/x", "pred/probs/x", "x"]
    assert [i.name for i in collect_inputs([str(tmp_path / "photos" / "masks")])] == ["x"]
    # --out the input folder itself: only what a prediction writes there is left out, never the photos
    assert [i.name for i in collect_inputs([str(tmp_path / "photos")], tmp_path / "photos")] == [
        "pred/overlays/x", "pred/probs/x", "x"]


def test_bad_inputs_are_one_line_naming_the_path(tmp_path):
    with pytest.raises(UserError, match="nowhere.png: no such image, folder or list file"):
        collect_inputs([str(tmp_path / "nowhere.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: folder holds no image files"):
        collect_inputs([str(tmp_path / "empty")])
    (tmp_path / "l.txt").write_text("# nothing\n")
    with pytest.raises(UserError, match="l.txt names no images"):
        collect_inputs([str(tmp_path / "l.txt")])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UserError, match="cannot read image .*broken.png: "):
        read_rgb(tmp_path / "broken.png")


def test_palette_mask_reads_back_as_class_indices(tmp_path):
    classes = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    palette_mask(classes, palette).save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as img:
        assert img.mode == "P"
        np.testing.assert_array_equal(np.asarray(img), classes)
        assert img.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 0, 255]


def test_blend_and_legend_entries_by_hand():
    image = np.full((1, 2, 3), 100, np.uint8)
    classes = np.array([[0, 1]], np.uint8)
    palette = np.array([[0, 0, 0], [200, 0, 50]], np.uint8)
    np.testing.assert_array_equal(blend(image, classes, palette, 0.5), [[[50, 50, 50], [150, 50, 75]]])
    assert classes_present(np.array([[2, 2, 0, 2]], np.uint8), 4) == [(2, 0.75), (0, 0.25)]
    over = overlay_with_legend(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), palette, ["bg", "x"])
    assert over.width > 4 and over.height >= 4  # a legend beside the image


def test_confidence_map_and_csv_row():
    conf = confidence_image(np.array([[0.0, 0.5, 1.0]], np.float32))
    np.testing.assert_array_equal(np.asarray(conf), [[0, 128, 255]])
    row = classification_row("a.png", np.array([0.1, 0.6, 0.3]), ["cat", "dog", "fox"], k=2)
    assert row == {"file": "a.png", "class": "1", "class_name": "dog", "probability": "0.600000",
                   "top_k": "dog:0.600000;fox:0.300000"}


def test_meta_from_options_run_and_model(tmp_path):
    meta = resolve_meta(tmp_path / "m.safetensors", {"num_classes": 3, "classes": ["a", "b", "c"]})
    assert meta.class_names == ("a", "b", "c") and meta.palette.shape == (3, 3) and meta.scale == 1.0
    voc = resolve_meta(tmp_path / "m.safetensors", {"num_classes": 21}, data="voc")
    assert voc.class_names[15] == "person" and tuple(voc.palette[1]) == (128, 0, 0)
    (tmp_path / "pal.txt").write_text("1 2 3\n4 5 6\n7 8 9\n")
    assert tuple(resolve_meta(tmp_path / "m", {"num_classes": 3}, palette_file=str(tmp_path / "pal.txt")
                              ).palette[2]) == (7, 8, 9)
    with pytest.raises(UserError, match="names 21 classes, but .* is a 3-class model"):
        resolve_meta(tmp_path / "m", {"num_classes": 3}, data="voc")
    # a model inside a run directory: the run's dataset (Cityscapes: read at half size) and windows
    run = tmp_path / "run"
    (run / "stages" / "baseline").mkdir(parents=True)
    (run / "config.yaml").write_text("data: {name: cityscapes, scale: 0.0}\neval: {window: [64, 64]}\n")
    city = resolve_meta(run / "stages" / "baseline" / "model.safetensors", {"num_classes": 19})
    assert city.class_names[0] == "road" and city.scale == 0.5 and city.window == [64, 64]
    # a classification model is read at the side it trained at, whatever its dataset's usual one
    (run / "config.yaml").write_text("data: {name: cifar10, image_size: 48}\n")
    model = run / "stages" / "baseline" / "model.safetensors"
    assert resolve_meta(model, {"num_classes": 10}).size == 32  # a file that records no size: CIFAR-10's
    assert resolve_meta(model, {"num_classes": 10, "image_size": 48}).size == 48
    assert resolve_meta(model, {"num_classes": 10, "image_size": 48}, data="cifar10").size == 48
    assert resolve_meta(model, {"num_classes": 10, "image_size": 48}, size=40).size == 40
