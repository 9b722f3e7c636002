"""``dmt import FORMAT EXPORT --images DIR --out FOLDER``: an annotation tool's export as a dataset folder.

Segmentation (``coco``, ``labelme``, ``cvat``) writes the ``data.name: folder`` layout; classification
(``labelstudio``, ``csv``) the ``imagefolder`` class folders (``--layout folders``) or a list file
(``--layout list``). See :mod:`dmt.annotations` and docs/labelling.md.
"""

from __future__ import annotations

import argparse

from dmt.cli.help_format import DefaultsOnce

SEGMENTATION = ("coco", "labelme", "cvat")
CLASSIFICATION = ("labelstudio", "csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="turn an annotation tool's export into a dataset folder dmt trains on",
        description="Segmentation: COCO JSON (polygons, RLE), a folder of LabelMe JSON files, or CVAT's "
                    "'Segmentation mask 1.1' export (zip or folder) -> FOLDER/images (linked), masks/, classes.txt "
                    "(data.name=folder data.root=FOLDER). Classification: a Label Studio JSON export or a "
                    "path,label CSV -> FOLDER/labelled/<class>/ + unlabelled/ (data.name=imagefolder "
                    "data.root=FOLDER), or FOLDER/train.csv with --layout list. Every image below --images is "
                    "imported; those the export does not annotate are unlabelled. Nothing is written on an error.",
        formatter_class=DefaultsOnce)
    p.add_argument("format", choices=(*SEGMENTATION, *CLASSIFICATION), help="the export's format")
    p.add_argument("export", metavar="EXPORT",
                   help="the export: COCO/Label Studio JSON file, LabelMe folder, CVAT zip or folder, CSV file")
    p.add_argument("--images", required=True, metavar="DIR", help="the folder of the images the export annotates")
    p.add_argument("--out", required=True, metavar="FOLDER", help="the dataset folder to write (must not exist)")
    p.add_argument("--classes", metavar="FILE", default=None,
                   help="labelme: the class names after background, one a line, in order (default: the labels, "
                        "sorted)")
    p.add_argument("--layout", choices=("folders", "list"), default="folders",
                   help="classification: class folders of linked images, or a path,label list file")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dmt.annotations import (CLASSIFICATION_READERS, SEGMENTATION_READERS, write_classification,
                                 write_segmentation_folder)
    from dmt.errors import UserError

    if args.classes is not None and args.format != "labelme":
        raise UserError(f"--classes applies to labelme only; {args.format} exports name their classes themselves")
    if args.layout != "folders" and args.format not in CLASSIFICATION:
        raise UserError(f"--layout applies to classification imports ({', '.join(CLASSIFICATION)}) only")
    if args.format in CLASSIFICATION:
        summary = write_classification(CLASSIFICATION_READERS[args.format](args.export, args.images),
                                       args.out, args.images, args.layout)
    else:
        extra = {}
        if args.classes is not None:
            path = Path(args.classes).expanduser()
            if not path.is_file():
                raise UserError(f"--classes {path} not found")
            extra["classes"] = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        summary = write_segmentation_folder(SEGMENTATION_READERS[args.format](args.export, args.images, **extra),
                                            args.out, args.images)
    print(f"{summary.out}: {summary.labelled} labelled, {summary.unlabelled} unlabelled images, "
          f"{len(summary.classes)} classes")
    return 0
