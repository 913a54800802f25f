"""The Ray Data job that turns an ImageNet-layout folder into Parquet shards.

Plan: the driver scans the layout (cheap: names only) and groups the labelled files into
shard tasks of ``rows_per_shard`` files per split. Ray Data runs one task per shard
(``Dataset.map``), which reads, decodes and writes its shard and its quarantine part itself,
so pixels never pass through the driver, and returns a one-line summary. The driver then
writes the scan-stage rejects and, last, ``manifest.json``.

Nothing is lost: every input is either a row of a shard or a row of ``quarantine/``, and the
manifest is only published when ``inputs_seen == rows_written + quarantined``.

Incremental and idempotent, for scheduled runs: an input whose ``source`` is already listed
(as a row or in quarantine) by the current manifest is not processed again, so a re-run on
the same input writes nothing, and a run after files were added processes only those and
publishes manifest version N+1 listing all shards. Shards of a run carry its version in
their name (``part-v0002-00000.parquet``). A run killed before it published leaves shards no
manifest lists; the next run deletes them and redoes their inputs, so readers never see a
duplicate or a partial row.
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
from preprocessing.layouts.imagenet import SPLITS as SPLIT_DIRS
from preprocessing.layouts.imagenet import scan_imagenet
from preprocessing.manifest import (
    MANIFEST_NAME,
    Manifest,
    ShardEntry,
    SplitEntry,
    read_manifest,
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


def plan_shards(
    files: list[InputFile], rows_per_shard: int, version: int = 1
) -> list[dict[str, Any]]:
    """Group files into per-split shard tasks, in a stable (split, path) order."""
    tasks: list[dict[str, Any]] = []
    for split in sorted({f.split for f in files}):
        in_split = sorted((f for f in files if f.split == split), key=lambda f: f.source)
        for index, start in enumerate(range(0, len(in_split), rows_per_shard)):
            chunk = in_split[start : start + rows_per_shard]
            name = f"part-v{version:04d}-{index:05d}.parquet"
            tasks.append({"split": split, "name": name, "files": [f.to_dict() for f in chunk]})
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

    name = task["name"]
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


def _clear_output(output: Path) -> None:
    for child in output.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _previous_manifest(
    output: Path, config: ImagePreprocessConfig, label_map: dict[str, int]
) -> Manifest | None:
    """The published manifest to extend, after checking that this run may extend it."""
    if not (output / MANIFEST_NAME).exists():
        return None
    previous = read_manifest(output)
    if previous.config_hash != config.config_hash():
        raise ValueError(
            f"output directory {str(output)!r} was written with config {previous.config} "
            f"(hash {previous.config_hash}); this run's is {config.model_dump()} "
            f"(hash {config.config_hash()}): pass --overwrite to rebuild it"
        )
    if previous.label_map != label_map:
        raise ValueError(
            f"the class folders changed since {str(output)!r} was written "
            f"({len(previous.label_map)} -> {len(label_map)} classes), which changes label "
            "indices: pass --overwrite to rebuild it"
        )
    return previous


def remove_unpublished(output: Path, previous: Manifest | None) -> list[str]:
    """Delete shard and quarantine files no published manifest lists (a killed run's)."""
    listed = previous.all_files() if previous else set()
    removed = []
    for path in sorted(output.rglob("*.parquet")):
        rel = path.relative_to(output).as_posix()
        if rel.split("/")[0] in (*SPLIT_DIRS, QUARANTINE_DIR) and rel not in listed:
            path.unlink()
            removed.append(rel)
    return removed


def processed_sources(output: Path, manifest: Manifest) -> set[str]:
    """Sources the manifest already accounts for, as rows or in quarantine."""
    import pyarrow.parquet as pq

    return {
        source
        for rel in sorted(manifest.all_files())
        for source in pq.read_table(output / rel, columns=["source"])["source"].to_pylist()
    }


def _merge_splits(
    previous: Manifest | None, summaries: list[dict[str, Any]]
) -> dict[str, SplitEntry]:
    before = previous.splits if previous else {}
    splits: dict[str, SplitEntry] = {}
    for split in sorted({*before, *(s["split"] for s in summaries)}):
        shards = list(before[split].shards) if split in before else []
        shards += [
            ShardEntry(path=s["shard_path"], rows=s["rows"])
            for s in summaries
            if s["split"] == split and s["rows"]
        ]
        shards.sort(key=lambda e: e.path)
        splits[split] = SplitEntry(rows=sum(e.rows for e in shards), shards=shards)
    return splits


def preprocess_images(
    input_dir: Path,
    output_dir: Path,
    config: ImagePreprocessConfig | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Run the image preprocessing job on the connected Ray cluster; returns the manifest.

    Processes only inputs the output's manifest does not list yet; ``overwrite`` starts afresh.
    """
    import ray
    from ray.data import DataContext
    from ray.data._internal.tensor_extensions.arrow import FixedShapeTensorFormat

    config = config or ImagePreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_imagenet(input_root)
    output_root.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _clear_output(output_root)
    previous = _previous_manifest(output_root, config, scan.label_map)
    remove_stale_tmp(output_root)
    remove_unpublished(output_root, previous)
    done = processed_sources(output_root, previous) if previous else set()
    new_files = [f for f in scan.files if f.source not in done]
    new_rejected = [r for r in scan.rejected if r.source not in done]
    if previous is not None and not new_files and not new_rejected:
        return previous  # nothing new: write nothing
    version = previous.version + 1 if previous else 1

    # Any tensor column Ray Data itself writes is Arrow's standard type, like ours.
    DataContext.get_current().arrow_fixed_shape_tensor_format = FixedShapeTensorFormat.ARROW_NATIVE
    tasks = plan_shards(new_files, config.rows_per_shard, version)
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

    quarantine = list(previous.quarantine) if previous else []
    quarantine += [
        ShardEntry(path=s["quarantine_path"], rows=s["quarantined"])
        for s in summaries
        if s["quarantined"]
    ]
    if new_rejected:
        scan_path = f"{QUARANTINE_DIR}/scan-v{version:04d}.parquet"
        write_table_atomic(quarantine_table(new_rejected), output_root / scan_path)
        quarantine.append(ShardEntry(path=scan_path, rows=len(new_rejected)))
    splits = _merge_splits(previous, summaries)
    seen_before = previous.inputs_seen if previous else 0
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        version=version,
        modality="image",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        input_root=str(input_root),
        config=config.model_dump(),
        config_hash=config.config_hash(),
        schema=image_schema(config.crop_size),
        label_map=scan.label_map,
        splits=splits,
        quarantine=sorted(quarantine, key=lambda e: e.path),
        inputs_seen=seen_before + len(new_files) + len(new_rejected),
        rows_written=sum(e.rows for e in splits.values()),
        quarantined=sum(e.rows for e in quarantine),
    )
    write_manifest(manifest, output_root)
    return manifest
