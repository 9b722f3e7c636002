"""CVAT "Segmentation mask 1.1" import: colour masks mapped through labelmap.txt, from a zip or a folder."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from annotation_fixtures import H, W, assert_masks, read_mask
from PIL import Image

from dmt.annotations.cvat import parse_labelmap, read_cvat
from dmt.annotations.layout import write_segmentation_folder
from dmt.data.folder import folder_source
from dmt.errors import UserError

LABELMAP = "# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\n"
COLOURS = np.array([[0, 0, 0], [128, 64, 128], [0, 0, 142]], dtype=np.uint8)


def expected() -> dict[str, np.ndarray]:
    a = np.zeros((H, W), dtype=np.uint8)
    a[0:3] = 1
    a[3:6, 5:8] = 2
    d = np.full((H, W), 2, dtype=np.uint8)
    d[:, 0] = 0
    return {"a": a, "d": d}


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def members(masks: dict[str, np.ndarray] | None = None, labelmap: str = LABELMAP) -> dict[str, bytes]:
    masks = masks if masks is not None else {"a": COLOURS[expected()["a"]], "sub/d": COLOURS[expected()["d"]]}
    out = {"labelmap.txt": labelmap.encode(), "ImageSets/Segmentation/default.txt": b"a\nb\nc\nsub/d\n"}
    out.update({f"SegmentationClass/{name}.png": png(rgb) for name, rgb in masks.items()})
    return out


def write_zip(tmp_path, content: dict[str, bytes]) -> str:
    path = tmp_path / "task_1-segmentation mask 1.1.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in content.items():
            z.writestr(name, data)
    return str(path)


def write_folder(tmp_path, content: dict[str, bytes]) -> str:
    for name, data in content.items():
        (tmp_path / "cvat" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "cvat" / name).write_bytes(data)
    return str(tmp_path / "cvat")


@pytest.mark.parametrize("write", [write_zip, write_folder])
def test_colour_masks_become_class_masks(tmp_path, images, write):
    read = read_cvat(write(tmp_path, members()), images)
    assert read.classes == ("background", "road", "car")
    assert_masks(read, expected(), ["b", "c"])


def test_the_folder_keeps_the_tools_colours_and_loads(tmp_path, images):
    out = tmp_path / "data"
    write_segmentation_folder(read_cvat(write_zip(tmp_path, members()), images), out, images)
    np.testing.assert_array_equal(read_mask(out / "masks" / "d.png"), expected()["d"])
    assert (out / "palette.txt").read_text() == "0 0 0\n128 64 128\n0 0 142\n"
    source = folder_source(out)
    np.testing.assert_array_equal(source.palette, COLOURS)
    assert source.list_split("unlabelled") == ["b", "c"]


def test_background_is_class_0_wherever_the_labelmap_lists_it():
    names, colours = parse_labelmap("car:0,0,142::\nbackground:1,2,3::\nroad:128,64,128::\n", "labelmap.txt")
    assert names == ("background", "car", "road")
    assert colours.tolist() == [[1, 2, 3], [0, 0, 142], [128, 64, 128]]
    names, colours = parse_labelmap("car:0,0,142::\n", "labelmap.txt")  # none: black is background
    assert names == ("background", "car") and colours.tolist() == [[0, 0, 0], [0, 0, 142]]


def _unknown_colour():
    rgb = COLOURS[expected()["a"]].copy()
    rgb[1, 2] = (255, 255, 0)
    return members({"a": rgb}), "SegmentationClass/a.png: colour 255,255,0 at pixel (2, 1) is no label's colour"


def _wrong_size():
    return members({"a": np.zeros((H, W + 1, 3), np.uint8)}), "SegmentationClass/a.png: the export says 9x6"


def _no_image():
    return members({"zzz": np.zeros((H, W, 3), np.uint8)}), "SegmentationClass/zzz.png: no image named 'zzz'"


def _shared_colour():
    return members(labelmap=LABELMAP + "truck:0,0,142::\n"), "labels 'car' and 'truck' share the colour 0,0,142"


@pytest.mark.parametrize("spoil", [_unknown_colour, _wrong_size, _no_image, _shared_colour])
def test_a_malformed_export_is_one_line_and_writes_nothing(tmp_path, images, spoil):
    content, message = spoil()
    export = write_zip(tmp_path, content)
    with pytest.raises(UserError) as caught:
        write_segmentation_folder(read_cvat(export, images), tmp_path / "data", images)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "task_1-segmentation mask 1.1.zip"]


def test_without_a_labelmap_the_labels_are_pascal_vocs(tmp_path, images):
    from dmt.data.voc import voc_colormap

    mask = np.zeros((H, W), dtype=np.uint8)
    mask[2:4, 1:6] = 8  # VOC's cat
    content = members({"b": voc_colormap(21)[mask]})
    del content["labelmap.txt"]
    read = read_cvat(write_zip(tmp_path, content), images)
    assert read.classes[8] == "cat" and len(read.classes) == 21
    np.testing.assert_array_equal(dict((p.stem, m) for p, m in read.items)["b"], mask)
