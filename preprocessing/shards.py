"""Parquet shard I/O: Arrow's canonical fixed-shape tensor columns and atomic file writes.

Tensor columns use ``arrow.fixed_shape_tensor`` (pyarrow's ``FixedShapeTensorArray``), the
standard Arrow extension type: plain pyarrow, Ray Data (``ray.data.read_parquet``) and any
other Arrow reader get back an (N, *shape) array of the stored dtype.

A shard is written to ``<name>.tmp`` in its final folder and renamed into place, so a reader
never sees half a file, and a killed job leaves only ``*.tmp`` debris that the next run clears.

Encoding (``parquet_write_options``): zstd level 1 for every column. Tensor values are
written with Parquet's ``BYTE_STREAM_SPLIT`` encoding, no dictionary and no statistics:
Parquet has no 8-bit physical type, so uint8 pixels are stored as INT32, and splitting the
four bytes of each value into four streams lets zstd squeeze the three zero streams to
almost nothing (the file is as small as with dictionary encoding), at about 0.6x the write
time of Arrow's default (dictionary + zstd level 3) measured on 224x224x3 images. Float32
tensors (audio, flow) compress better this way too. Readers need Parquet
``BYTE_STREAM_SPLIT`` for INT32 (format 2.11; pyarrow >= 17, and so Ray Data, reads it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"


def tensor_column(batch: np.ndarray) -> pa.ExtensionArray:
    """(N, *shape) numpy array -> Arrow fixed-shape tensor array of N cells.

    Built from a zero-copy flat view (a FixedSizeList storage wrapped in the extension type):
    ``pa.FixedShapeTensorArray.from_numpy_ndarray`` gives the same array but measured ~5000x
    slower here (0.33 s for 100 images of 224x224x3).
    """
    if batch.ndim < 2:
        raise ValueError(f"a tensor column needs an (N, *shape) array, got shape {batch.shape}")
    batch = np.ascontiguousarray(batch)
    cell = int(np.prod(batch.shape[1:]))
    storage = pa.FixedSizeListArray.from_arrays(pa.array(batch.reshape(-1)), cell)
    tensor_type = pa.fixed_shape_tensor(pa.from_numpy_dtype(batch.dtype), list(batch.shape[1:]))
    return pa.ExtensionArray.from_storage(tensor_type, storage)


def tensor_from_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow fixed-shape tensor column -> (N, *shape) numpy array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.to_numpy_ndarray()


def parquet_write_options(schema: pa.Schema) -> dict[str, Any]:
    """``pq.write_table`` keyword arguments for ``schema`` (the encoding in the module doc)."""
    tensor_leaves = {
        f"{f.name}.list.element": "BYTE_STREAM_SPLIT"
        for f in schema
        if isinstance(f.type, pa.FixedShapeTensorType)
    }
    others = [f.name for f in schema if not isinstance(f.type, pa.FixedShapeTensorType)]
    options: dict[str, Any] = {"compression": "zstd", "compression_level": 1}
    if tensor_leaves:
        options["use_dictionary"] = others
        options["column_encoding"] = tensor_leaves
        options["write_statistics"] = others  # a pixel's min/max over a shard says nothing
    return options


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet at ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    pq.write_table(table, tmp, **parquet_write_options(table.schema))
    os.replace(tmp, path)


def remove_stale_tmp(root: Path) -> int:
    """Delete ``*.tmp`` files a killed run left under ``root``; returns how many."""
    stale = list(Path(root).rglob(f"*{TMP_SUFFIX}"))
    for p in stale:
        p.unlink()
    return len(stale)
