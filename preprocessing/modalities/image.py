"""The image preprocessing job: an ImageNet-layout folder -> Parquet shards + manifest.

The image modality's plug-in for the generic job (``preprocessing.engine.run``, which documents
planning, incremental runs, quarantine and the manifest): the ImageNet layout scan, the decode
policy of ``preprocessing.decode.image`` and the shard schema ``image, label, wnid, source, key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from preprocessing.config import ImagePreprocessConfig
from preprocessing.decode.image import decode_image
from preprocessing.engine.manifest import Manifest
from preprocessing.engine.records import ScanResult
from preprocessing.engine.run import ShardProgress, run_preprocessing
from preprocessing.engine.spec import ModalitySpec
from preprocessing.layouts.imagenet import SPLITS as SPLIT_DIRS
from preprocessing.layouts.imagenet import scan_imagenet


def image_schema(crop_size: int) -> dict[str, str]:
    """Column -> type description, as recorded in the manifest."""
    return image_spec(ImagePreprocessConfig(resize_to=crop_size, crop_size=crop_size)).schema_doc


def decode_image_row(
    data: bytes, item: Mapping[str, Any], config: ImagePreprocessConfig
) -> dict[str, Any]:
    """One ImageNet file's bytes and scan record -> its ``image``, ``label`` and ``wnid``."""
    return {
        "image": decode_image(data, config.resize_to, config.crop_size),
        "label": int(item["label"]),
        "wnid": item["wnid"],
    }


def image_spec(config: ImagePreprocessConfig) -> ModalitySpec:
    side = config.crop_size
    return ModalitySpec(
        name="image",
        splits=SPLIT_DIRS,
        columns=pa.schema(
            [
                ("image", pa.fixed_shape_tensor(pa.uint8(), [side, side, 3])),
                ("label", pa.int64()),
                ("wnid", pa.string()),
            ]
        ),
        columns_doc={
            "image": f"fixed_shape_tensor<uint8>[{side}, {side}, 3] (HWC, RGB)",
            "label": "int64 (index of wnid in the sorted class folders)",
            "wnid": "string",
        },
        decode=partial(decode_image_row, config=config),
        label_source="the class folders",
    )


def preprocess_images(
    input_dir: Path,
    output_dir: Path,
    config: ImagePreprocessConfig | None = None,
    overwrite: bool = False,
    progress: ShardProgress | None = None,
) -> Manifest:
    """Run the image preprocessing job on the connected Ray cluster; returns the manifest.

    Processes only inputs the output's manifest does not list yet; ``overwrite`` starts afresh.
    """
    config = config or ImagePreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_imagenet(input_root)
    return run_preprocessing(
        image_spec(config),
        ScanResult(items=scan.files, rejected=scan.rejected, label_map=scan.label_map),
        input_root,
        output_root,
        config,
        overwrite,
        progress,
    )
