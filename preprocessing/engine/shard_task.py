"""Shard tasks: how scanned inputs are grouped into shards, and the Ray task that writes one.

The driver groups the labelled inputs into tasks of ``rows_per_shard`` inputs per split
(``plan_shards``). Ray Data runs ``write_shard`` once per task: it reads and decodes the task's
files with the modality's decode function and writes the shard and its quarantine part itself,
so media never pass through the driver, and returns a one-line summary.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from preprocessing.engine.records import DecodeError, Rejected, ScanItem
from preprocessing.engine.spec import ModalitySpec
from preprocessing.parquet.shards import write_atomic, write_table_atomic
from preprocessing.parquet.tensor_parquet import ShardWriter

QUARANTINE_DIR = "quarantine"
QUARANTINE_SCHEMA = pa.schema(
    [("source", pa.string()), ("stage", pa.string()), ("reason", pa.string())]
)


def quarantine_table(rejected: list[Rejected]) -> pa.Table:
    return pa.Table.from_pylist([r.to_dict() for r in rejected], schema=QUARANTINE_SCHEMA)


def plan_shards(
    items: Sequence[ScanItem], rows_per_shard: int, version: int = 1
) -> list[dict[str, Any]]:
    """Group inputs into per-split shard tasks, in a stable (split, source) order."""
    tasks: list[dict[str, Any]] = []
    for split in sorted({f.split for f in items}):
        in_split = sorted((f for f in items if f.split == split), key=lambda f: f.source)
        for index, start in enumerate(range(0, len(in_split), rows_per_shard)):
            chunk = in_split[start : start + rows_per_shard]
            name = f"part-v{version:04d}-{index:05d}.parquet"
            tasks.append({"split": split, "name": name, "files": [f.to_dict() for f in chunk]})
    return tasks


def write_shard(
    task: dict[str, Any], input_root: str, output_root: str, spec: ModalitySpec
) -> dict[str, Any]:
    """Decode one shard task's files and write its shard and quarantine part (a Ray task)."""
    writer = ShardWriter(spec.schema)
    rejected: list[Rejected] = []
    flags: Counter[str] = Counter()
    for f in task["files"]:
        path = Path(input_root) / f["source"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            rejected.append(Rejected(f["source"], "read", f"{type(exc).__name__}: {exc}"))
            continue
        try:
            row = spec.decode(data, f)
        except DecodeError as exc:
            rejected.append(Rejected(f["source"], exc.stage, exc.reason))
            continue
        row["source"] = f["source"]
        row.setdefault("key", hashlib.sha256(data).hexdigest())  # a decoder may set its own
        if spec.row_flags is not None:
            flags.update(set(spec.row_flags(row)))
        writer.append(row)  # encodes the row's arrays, so the decoder's buffers can go now
        del row, data

    name = task["name"]
    shard_path = quarantine_path = ""
    if writer.num_rows:
        shard_path = f"{task['split']}/{name}"
        write_atomic(Path(output_root) / shard_path, writer.write)
    if rejected:
        quarantine_path = f"{QUARANTINE_DIR}/{task['split']}-{name}"
        write_table_atomic(quarantine_table(rejected), Path(output_root) / quarantine_path)
    return {
        "split": task["split"],
        "shard_path": shard_path,
        "rows": writer.num_rows,
        "quarantine_path": quarantine_path,
        "quarantined": len(rejected),
        "flags": json.dumps(dict(sorted(flags.items()))),  # a string: Arrow-friendly
    }
