"""Sample-grid building blocks: colours, enlargement and tiling, checked pixel by pixel."""

import numpy as np

from dmt.tasks.panels import IGNORE_COLOUR, class_palette, colourise, grid, segmentation_rows, upscale


def test_colourise_maps_classes_and_ignore() -> None:
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)
    mask = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    out = colourise(mask, palette)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 1].tolist() == [255, 0, 0] and out[1, 0].tolist() == [0, 255, 0]
    assert out[1, 1].tolist() == list(IGNORE_COLOUR)
    assert colourise(np.array([[7]]), palette)[0, 0].tolist() == list(IGNORE_COLOUR)  # beyond the palette


def test_default_palette_is_the_voc_colour_map() -> None:
    p = class_palette(3)
    assert p.tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    assert class_palette(2, np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_upscale_by_a_whole_factor() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    big = upscale(image, 5)  # shorter side 2 -> factor 3
    assert big.shape == (6, 9, 3)
    assert (big[::3, ::3] == image).all() and (big[2, 8] == image[0, 2]).all()
    assert upscale(image, 2) is image


def test_grid_tiles_cells_in_the_largest_cell_size() -> None:
    a = np.full((2, 2, 3), 10, dtype=np.uint8)
    b = np.full((3, 1, 3), 20, dtype=np.uint8)
    out = grid([[a, b], [None, a]], pad=1, fill=255)
    assert out.shape == (2 * (3 + 1) + 1, 2 * (2 + 1) + 1, 3)
    assert (out[1:3, 1:3] == 10).all() and (out[1:4, 4:5] == 20).all()
    assert (out[5:8, 1:3] == 255).all()  # the empty cell
    assert (out[5:7, 4:6] == 10).all()


def test_segmentation_rows_columns() -> None:
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    m = np.zeros((4, 4), dtype=np.uint8)
    pal = class_palette(2)
    rows, cols = segmentation_rows([img], [None], [m], [m], pal, min_side=4)
    assert cols == ["image", "kept pseudo labels", "prediction"] and len(rows[0]) == 3
    rows, cols = segmentation_rows([img, img], [m, None], None, [m, m], pal, min_side=8)
    assert cols == ["image", "ground truth", "prediction"]
    assert rows[1][1] is None and rows[0][0].shape == (8, 8, 3)


def test_changes_map_colours_each_pixel_by_what_changed() -> None:
    from dmt.tasks.panels import GAINED_COLOUR, LOST_COLOUR, UNCHANGED_COLOUR, changes_map

    truth = np.array([[0, 1, 2], [1, 255, 255]], dtype=np.uint8)
    before = np.array([[1, 1, 2], [0, 0, 7]], dtype=np.uint8)
    after = np.array([[0, 2, 2], [2, 0, 0]], dtype=np.uint8)
    out = changes_map(truth, before, after)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    expected = [[GAINED_COLOUR, LOST_COLOUR, UNCHANGED_COLOUR],  # wrong->right, right->wrong, right->right
                [UNCHANGED_COLOUR, IGNORE_COLOUR, IGNORE_COLOUR]]  # wrong->wrong, then no label (either way)
    assert out.tolist() == [[list(c) for c in row] for row in expected]
    assert GAINED_COLOUR[1] > GAINED_COLOUR[0] and LOST_COLOUR[0] > LOST_COLOUR[1]  # green and red


def test_comparison_rows_put_image_truth_before_after_and_changes_side_by_side() -> None:
    from dmt.tasks.panels import COMPARISON_COLUMNS, GAINED_COLOUR, comparison_rows

    pal = np.array([[0, 0, 0], [255, 0, 0]], dtype=np.uint8)
    img = np.full((2, 2, 3), 7, dtype=np.uint8)
    truth = np.array([[1, 0], [255, 0]], dtype=np.uint8)
    before = np.zeros((2, 2), dtype=np.uint8)
    after = np.array([[1, 0], [1, 0]], dtype=np.uint8)
    rows = comparison_rows([img, img], [truth, truth], [before, before], [after, after], pal, min_side=4)
    assert len(rows) == 2 and len(rows[0]) == len(COMPARISON_COLUMNS) == 5
    assert COMPARISON_COLUMNS == ["image", "ground truth", "better baseline", "last phase", "changes"]
    image, t, b, a, changes = rows[0]
    assert all(c.shape == (4, 4, 3) for c in rows[0])  # 2x2 enlarged twice
    assert (image == 7).all()
    assert t[0, 0].tolist() == [255, 0, 0] and t[2, 0].tolist() == list(IGNORE_COLOUR)
    assert (b == 0).all() and a[2, 0].tolist() == [255, 0, 0]
    assert changes[0, 0].tolist() == list(GAINED_COLOUR) and changes[3, 1].tolist() == list(IGNORE_COLOUR)
    assert changes[0, 3].tolist() == [255, 255, 255]
