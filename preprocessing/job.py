"""The Ray Data job that turns an ImageNet-layout folder into Parquet shards.

Plan: the driver scans the layout (cheap: names only) and groups the labelled files into
shard tasks of ``rows_per_shard`` files per split. Ray Data runs one task per shard
(``Dataset.map``), which reads, decodes and writes its shard and its quarantine part itself,
so pixels never pass through the driver, and returns a one-line summary. The driver then
writes the scan-stage rejects and, last, ``manifest.json``.

Nothing is lost: every input is either a row of a shard or a row of ``quarantine/``, and the
manifest is only published when ``inputs_seen == rows_written + quarantined``.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from preprocessing.config import FORMAT_VERSION, ImagePreprocessConfig
from preprocessing.images import ImageDecodeError, decode_image
from preprocessing.layouts.imagenet import scan_imagenet
from preprocessing.manifest import (
    MANIFEST_NAME,
    Manifest,
    ShardEntry,
    SplitEntry,
    write_manifest,
)
from preprocessing.records import InputFile, Rejected
from preprocessing.shards import remove_stale_tmp, tensor_column, write_table_atomic

QUARANTINE_DIR = "quarantine"
QUARANTINE_SCHEMA = pa.schema(
    [("source", pa.string()), ("stage", pa.string()), ("reason", pa.string())]
)


def image_schema(crop_size: int) -> dict[str, str]:
    """Column -> type description, as recorded in the manifest."""
    return {
        "image": f"fixed_shape_tensor<uint8>[{crop_size}, {crop_size}, 3] (HWC, RGB)",
        "label": "int64 (index of wnid in the sorted class folders)",
        "wnid": "string",
        "source": "string (path relative to the input root)",
        "key": "string (sha256 of the source file's bytes)",
    }


def plan_shards(files: list[InputFile], rows_per_shard: int) -> list[dict[str, Any]]:
    """Group files into per-split shard tasks, in a stable (split, path) order."""
    tasks: list[dict[str, Any]] = []
    for split in sorted({f.split for f in files}):
        in_split = sorted((f for f in files if f.split == split), key=lambda f: f.source)
        for index, start in enumerate(range(0, len(in_split), rows_per_shard)):
            chunk = in_split[start : start + rows_per_shard]
            tasks.append({"split": split, "index": index, "files": [f.to_dict() for f in chunk]})
    return tasks


def quarantine_table(rejected: list[Rejected]) -> pa.Table:
    return pa.Table.from_pylist([r.to_dict() for r in rejected], schema=QUARANTINE_SCHEMA)


def write_image_shard(
    task: dict[str, Any], input_root: str, output_root: str, config: ImagePreprocessConfig
) -> dict[str, Any]:
    """Decode one shard task's files and write its shard and quarantine part (a Ray task)."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    wnids: list[str] = []
    sources: list[str] = []
    keys: list[str] = []
    rejected: list[Rejected] = []
    for f in task["files"]:
        path = Path(input_root) / f["source"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            rejected.append(Rejected(f["source"], "read", f"{type(exc).__name__}: {exc}"))
            continue
        try:
            image = decode_image(data, config.resize_to, config.crop_size)
        except ImageDecodeError as exc:
            rejected.append(Rejected(f["source"], exc.stage, exc.reason))
            continue
        images.append(image)
        labels.append(int(f["label"]))
        wnids.append(f["wnid"])
        sources.append(f["source"])
        keys.append(hashlib.sha256(data).hexdigest())

    name = f"part-{task['index']:05d}.parquet"
    shard_path = quarantine_path = ""
    if images:
        table = pa.table(
            {
                "image": tensor_column(np.stack(images)),
                "label": pa.array(labels, pa.int64()),
                "wnid": pa.array(wnids, pa.string()),
                "source": pa.array(sources, pa.string()),
                "key": pa.array(keys, pa.string()),
            }
        )
        shard_path = f"{task['split']}/{name}"
        write_table_atomic(table, Path(output_root) / shard_path)
    if rejected:
        quarantine_path = f"{QUARANTINE_DIR}/{task['split']}-{name}"
        write_table_atomic(quarantine_table(rejected), Path(output_root) / quarantine_path)
    return {
        "split": task["split"],
        "shard_path": shard_path,
        "rows": len(images),
        "quarantine_path": quarantine_path,
        "quarantined": len(rejected),
    }


def _prepare_output(output: Path, overwrite: bool) -> None:
    if (output / MANIFEST_NAME).exists():
        if not overwrite:
            raise ValueError(
                f"output directory {str(output)!r} already holds a {MANIFEST_NAME}; "
                "pass --overwrite to replace it"
            )
        for child in output.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(output)


def preprocess_images(
    input_dir: Path,
    output_dir: Path,
    config: ImagePreprocessConfig | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Run the image preprocessing job on the connected Ray cluster; returns the manifest."""
    import ray
    from ray.data import DataContext
    from ray.data._internal.tensor_extensions.arrow import FixedShapeTensorFormat

    config = config or ImagePreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_imagenet(input_root)
    _prepare_output(output_root, overwrite)

    # Any tensor column Ray Data itself writes is Arrow's standard type, like ours.
    DataContext.get_current().arrow_fixed_shape_tensor_format = FixedShapeTensorFormat.ARROW_NATIVE
    tasks = plan_shards(scan.files, config.rows_per_shard)
    summaries: list[dict[str, Any]] = []
    if tasks:
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
        write = partial(
            write_image_shard,
            input_root=str(input_root),
            output_root=str(output_root),
            config=config,
        )
        summaries = ds.map(write, num_cpus=1).take_all()

    quarantine = [
        ShardEntry(path=s["quarantine_path"], rows=s["quarantined"])
        for s in summaries
        if s["quarantined"]
    ]
    if scan.rejected:
        scan_path = f"{QUARANTINE_DIR}/scan.parquet"
        write_table_atomic(quarantine_table(scan.rejected), output_root / scan_path)
        quarantine.append(ShardEntry(path=scan_path, rows=len(scan.rejected)))
    splits: dict[str, SplitEntry] = {}
    for split in sorted({t["split"] for t in tasks}):
        shards = sorted(
            (
                ShardEntry(path=s["shard_path"], rows=s["rows"])
                for s in summaries
                if s["split"] == split and s["rows"]
            ),
            key=lambda e: e.path,
        )
        splits[split] = SplitEntry(rows=sum(e.rows for e in shards), shards=shards)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        modality="image",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        input_root=str(input_root),
        config=config.model_dump(),
        config_hash=config.config_hash(),
        schema=image_schema(config.crop_size),
        label_map=scan.label_map,
        splits=splits,
        quarantine=sorted(quarantine, key=lambda e: e.path),
        inputs_seen=scan.inputs_seen,
        rows_written=sum(s["rows"] for s in summaries),
        quarantined=sum(e.rows for e in quarantine),
    )
    write_manifest(manifest, output_root)
    return manifest
