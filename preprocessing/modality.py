"""What a modality plugs into the generic preprocessing job (``preprocessing.engine``).

A modality is a scan result (labelled inputs, scan-stage rejects, label map; see
``preprocessing.records.ScanResult``), plus this ``ModalitySpec``: a per-file decode function
that turns the file's bytes and its scan record into the row's columns, and the shard schema.
The job adds the two columns every shard has, ``source`` and ``key``, itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from preprocessing.shards import tensor_column

# bytes of the file, its scan record (``ScanItem.to_dict()``) -> the row's columns other than
# ``source`` (and ``key``: the sha256 of the bytes, unless the decoder returns its own);
# raises ``preprocessing.records.DecodeError`` for a file to quarantine.
RowDecoder = Callable[[bytes, Mapping[str, Any]], dict[str, Any]]
# a decoded row -> the names of the flags it raises (e.g. ``audio_missing``); the manifest's
# ``row_flags`` counts the rows raising each flag, per split.
RowFlags = Callable[[Mapping[str, Any]], Iterable[str]]

COMMON_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("source", pa.string(), "string (path relative to the input root)"),
    ("key", pa.string(), "string (sha256 of the source file's bytes)"),
)


class JobConfig(Protocol):
    """The part of a preprocessing config (a pydantic model) that the generic job uses."""

    @property
    def rows_per_shard(self) -> int: ...

    def config_hash(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModalitySpec:
    """A modality's plug-in for the generic job. Must pickle: it is shipped to Ray tasks."""

    name: str  # the manifest's ``modality``
    splits: tuple[str, ...]  # split folders shards may be written to
    columns: pa.Schema  # the decoded columns, in order; fixed-shape tensors for arrays
    columns_doc: dict[str, str]  # column -> human-readable type, for the manifest's ``schema``
    decode: RowDecoder
    label_source: str  # what defines the label map, named in the "it changed" error
    row_flags: RowFlags | None = None  # counted per split in the manifest's ``row_flags``
    key_doc: str | None = None  # when the decoder returns its own ``key``: what it hashes

    @property
    def schema(self) -> pa.Schema:
        """The full shard schema: the decoded columns, then ``source`` and ``key``."""
        return pa.schema([*self.columns, *((n, t) for n, t, _ in COMMON_COLUMNS)])

    @property
    def schema_doc(self) -> dict[str, str]:
        common = {n: doc for n, _, doc in COMMON_COLUMNS}
        if self.key_doc is not None:
            common["key"] = self.key_doc
        return {**self.columns_doc, **common}


class TableBuilder:
    """Rows appended one at a time -> a table of ``schema``, without holding decoded arrays.

    Each tensor value is copied into its column's preallocated (capacity, *shape) array as
    soon as the row is appended, while it is still in the CPU cache, and the row keeps no
    reference to it, so a decoder's buffers are freed (and reused) row by row; the table's
    tensor columns then wrap those arrays without another copy.
    """

    def __init__(self, schema: pa.Schema, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.schema = schema
        self.capacity = capacity
        self.num_rows = 0
        self._tensors: dict[str, np.ndarray] = {}
        self._values: dict[str, list[Any]] = {}
        for f in schema:
            if isinstance(f.type, pa.FixedShapeTensorType):
                # (to_pandas_dtype would import pandas)
                dtype = pa.array([], f.type.value_type).to_numpy().dtype
                self._tensors[f.name] = np.empty((capacity, *f.type.shape), dtype=dtype)
            else:
                self._values[f.name] = []

    def append(self, row: dict[str, Any]) -> None:
        """Add ``row`` (column -> value); a tensor value must have the column's dtype and shape."""
        if self.num_rows == self.capacity:
            raise ValueError(f"the table is full: capacity {self.capacity}")
        missing = [name for name in self.schema.names if name not in row]
        if missing:
            raise ValueError(f"row has no value for column(s) {missing}")
        for name, batch in self._tensors.items():
            value = np.asarray(row[name])
            if value.dtype != batch.dtype or value.shape != batch.shape[1:]:
                raise TypeError(
                    f"column {name!r}: decoder returned {value.dtype} {value.shape}, "
                    f"schema says {batch.dtype} {batch.shape[1:]}"
                )
        for name, batch in self._tensors.items():
            batch[self.num_rows] = row[name]
        for name, values in self._values.items():
            values.append(row[name])
        self.num_rows += 1

    def table(self) -> pa.Table:
        """The rows appended so far (at least one) as a table."""
        if self.num_rows == 0:
            raise ValueError("no rows to make a table of")
        arrays: list[pa.Array] = []
        for f in self.schema:
            if f.name in self._tensors:
                arrays.append(tensor_column(self._tensors[f.name][: self.num_rows]))
            else:
                arrays.append(pa.array(self._values[f.name], f.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (column -> value) -> a table of ``schema``; tensor columns are stacked arrays."""
    builder = TableBuilder(schema, max(len(rows), 1))
    for row in rows:
        builder.append(row)
    return builder.table()
