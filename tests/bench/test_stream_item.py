"""The ``cls_label_stream`` bench item's fabricated set streams (decodes one image per call) and labels."""

from __future__ import annotations

import numpy as np

from dmt.bench.stream_item import SIDE, StreamedImages, label_streamed
from dmt.data.arrays import ImageSet


def test_streamed_images_are_an_image_set_decoded_per_call():
    images = StreamedImages(100_000)
    assert isinstance(images, ImageSet) and len(images) == 100_000 and (images.labels == -1).all()
    assert sum(len(j) for j in images.jpegs) < 64_000  # eight small JPEG files, not 100,000 images
    first, again, ninth = images.image(99_999), images.image(99_999), images.image(99_999 - 8)
    assert first.shape == (SIDE, SIDE, 3) and first.dtype == np.uint8 and first.flags.c_contiguous
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, ninth) and np.array_equal(first[1:], ninth[1:])  # the same JPEG, i in pixel 0


def test_label_streamed_labels_every_image():
    got = label_streamed(40, workers=0)
    assert got["images"] == 40 and got["images_per_s"] > 0 and got["peak_rss_mib"] >= got["rss_before_mib"] > 0


def test_large_blocks_are_mapped_where_glibc_is():
    import platform
    import sys

    from dmt.engine.heap import map_large_blocks

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert map_large_blocks() is glibc  # elsewhere nothing is changed
