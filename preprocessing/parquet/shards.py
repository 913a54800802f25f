"""Parquet shard I/O: Arrow's canonical fixed-shape tensor columns and atomic file writes.

Tensor columns use ``arrow.fixed_shape_tensor`` (pyarrow's ``FixedShapeTensorArray``), the
standard Arrow extension type: plain pyarrow, Ray Data (``ray.data.read_parquet``) and any
other Arrow reader get back an (N, *shape) array of the stored dtype.

A shard is written to ``<name>.tmp`` in its final folder and renamed into place, so a reader
never sees half a file, and a killed job leaves only ``*.tmp`` debris that the next run clears.

Encoding: ``preprocessing.parquet.tensor_parquet`` writes the files (tensor values
``BYTE_STREAM_SPLIT`` + zstd level 1, its own pages for tensor columns, pyarrow for the
rest); ``parquet_write_options`` is that encoding as ``pq.write_table`` arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from preprocessing.parquet.tensor_parquet import parquet_write_options, tensor_column, write_table

__all__ = [
    "parquet_write_options",
    "remove_stale_tmp",
    "tensor_column",
    "tensor_from_column",
    "write_atomic",
    "write_table_atomic",
]

TMP_SUFFIX = ".tmp"


def tensor_from_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow fixed-shape tensor column -> (N, *shape) numpy array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.to_numpy_ndarray()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    write(tmp)
    os.replace(tmp, path)


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet at ``path`` via a temporary file and an atomic rename."""
    write_atomic(path, lambda tmp: write_table(table, tmp))


def remove_stale_tmp(root: Path) -> int:
    """Delete ``*.tmp`` files a killed run left under ``root``; returns how many."""
    stale = list(Path(root).rglob(f"*{TMP_SUFFIX}"))
    for p in stale:
        p.unlink()
    return len(stale)
