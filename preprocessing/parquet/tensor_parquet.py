"""A Parquet writer whose tensor columns skip Arrow's generic nested-column path.

Arrow writes a fixed-shape tensor column (storage ``fixed_size_list<value>[cell]``) like any
list: it computes a repetition and a definition level for every value, widens uint8 to
Parquet's INT32 and then encodes, which costs about 1 ms per 224x224x3 image here, more than
decoding the JPEG. Yet for a tensor with no nulls every level is known in advance: each row is
one run of ``cell`` present values. So this module writes the tensor columns' pages itself
(``preprocessing.parquet.tensor_pages``) and lets pyarrow write everything else:

1. pyarrow writes an empty table of the full schema once per writer: its footer gives the
   exact Parquet schema, the ``ARROW:schema`` metadata (the extension types) and the column
   orders pyarrow would write.
2. Each tensor column becomes one column chunk of v1 data pages, ``BYTE_STREAM_SPLIT``
   values, zstd level 1 (``TensorPages``).
3. pyarrow writes the other columns (``parquet_write_options``); the file is its column
   chunks (at their offsets), then the tensor chunks, then pyarrow's footer with one row
   group holding every chunk in the schema's column order.

The file is the one ``pq.write_table(table, **parquet_write_options(schema))`` writes up to
byte layout: same schema, metadata, encodings and values (tested against pyarrow, Ray Data
and DuckDB's independent reader). ``write_table`` writes a table; ``ShardWriter`` takes rows
one at a time and compresses each tensor page as soon as it fills, so a shard's tensors are
never held uncompressed. A table ``write_table`` does not cover (no tensor column, a null
anywhere in a tensor column) is written by pyarrow unchanged, as are tensor columns of value
types other than 8/16/32/64-bit integers and 32/64-bit floats.

The footer is edited as decoded Thrift (``preprocessing.parquet.thrift_compact``), every field
by its name in ``preprocessing.parquet.parquet_thrift``.

When this module can go: it exists for speed alone (a 256-image shard: 0.32 ms per image,
``pq.write_table`` with the same options 1.21 ms, 3.8x; ``docs/benchmarks.md``). It can be
replaced by ``pq.write_table`` as soon as pyarrow writes a ``fixed_size_list`` /
``arrow.fixed_shape_tensor`` column without computing per-value repetition and definition
levels and without widening uint8 to INT32 value by value: a fast path for non-null
fixed-size lists (levels known in advance: one run per row), or a native tensor encoding
(e.g. each cell as one ``FIXED_LEN_BYTE_ARRAY`` value, or a byte-stream encoding of the raw
cell bytes). Dropping it changes no file: the tests check our files against pyarrow's.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from preprocessing.parquet import parquet_thrift as pt
from preprocessing.parquet import thrift_compact as tc
from preprocessing.parquet.tensor_pages import TensorPages

MAGIC = b"PAR1"
_VALUE_TYPES = {"uint8", "int8", "uint16", "int16", "int32", "int64", "float", "double"}
COMPRESSION, COMPRESSION_LEVEL = "zstd", 1


def parquet_write_options(schema: pa.Schema) -> dict[str, Any]:
    """``pq.write_table`` keyword arguments for ``schema``: zstd level 1 for every column;
    tensor values ``BYTE_STREAM_SPLIT`` with no dictionary and no statistics.

    Parquet has no 8-bit physical type, so uint8 pixels are INT32 values; splitting each
    value's four bytes into four streams lets zstd squeeze the three zero streams to almost
    nothing (files as small as with dictionary encoding). Float32 tensors (audio, flow)
    compress better this way too. Readers need ``BYTE_STREAM_SPLIT`` for INT32 (Parquet
    format 2.11: pyarrow >= 17, and so Ray Data). A pixel's min/max over a shard says nothing,
    so tensor columns carry no statistics.
    """
    tensor_leaves = {
        f"{f.name}.list.element": "BYTE_STREAM_SPLIT"
        for f in schema
        if isinstance(f.type, pa.FixedShapeTensorType)
    }
    others = [f.name for f in schema if not isinstance(f.type, pa.FixedShapeTensorType)]
    options: dict[str, Any] = {"compression": COMPRESSION, "compression_level": COMPRESSION_LEVEL}
    if tensor_leaves:
        options["use_dictionary"] = others
        options["column_encoding"] = tensor_leaves
        options["write_statistics"] = others
    return options


def write_table(table: pa.Table, where: str | os.PathLike[str] | BinaryIO) -> None:
    """Write ``table`` as one Parquet row group (see the module doc) to a path or a file."""
    fast = [f.name for f in table.schema if _writable_tensor(table.column(f.name))]
    if not fast or table.num_rows == 0:
        pq.write_table(table, where, **parquet_write_options(table.schema))
        return
    layout = _Layout(table.schema)
    pages = {}
    for name in fast:
        column = table.column(name)
        pages[name] = layout.tensor_pages(name)
        for chunk in column.chunks:
            values = chunk.storage.flatten().to_numpy(zero_copy_only=False)
            pages[name].add_rows(values.reshape(len(chunk), -1))
    layout.write(where, table.drop_columns(fast), pages, table.num_rows)


class ShardWriter:
    """Rows appended one at a time -> the Parquet file ``write_table`` writes for them.

    A tensor value is validated, copied into its column's current page and, once the page
    is full (for a 224x224x3 image: at once), encoded and compressed while still in the CPU
    cache; the writer keeps no reference to it, so the decoder's buffers can be freed row by
    row and the shard's tensors are never held uncompressed. Other columns are collected and
    written by pyarrow at the end.
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.num_rows = 0
        self._layout = _Layout(schema)
        self._pages: dict[str, TensorPages] = {}
        self._values: dict[str, list[Any]] = {}
        self._tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        for f in schema:
            if isinstance(f.type, pa.FixedShapeTensorType):
                self._tensors[f.name] = (_numpy_dtype(f.type), tuple(f.type.shape))
                if str(f.type.value_type) in _VALUE_TYPES:
                    self._pages[f.name] = self._layout.tensor_pages(f.name)
                    continue
            self._values[f.name] = []

    def append(self, row: Mapping[str, Any]) -> None:
        """Add ``row`` (column -> value); a tensor value must have the column's dtype and shape."""
        missing = [name for name in self.schema.names if name not in row]
        if missing:
            raise ValueError(f"row has no value for column(s) {missing}")
        arrays = {}
        for name, (dtype, shape) in self._tensors.items():
            value = np.asarray(row[name])
            if value.dtype != dtype or value.shape != shape:
                raise TypeError(
                    f"column {name!r}: decoder returned {value.dtype} {value.shape}, "
                    f"schema says {dtype} {shape}"
                )
            arrays[name] = value
        for name, pages in self._pages.items():
            pages.add_row(arrays[name])
        for name, values in self._values.items():
            values.append(np.array(arrays[name]) if name in arrays else row[name])
        self.num_rows += 1

    def write(self, where: str | os.PathLike[str] | BinaryIO) -> None:
        """Write the rows appended (at least one) as one Parquet file."""
        if self.num_rows == 0:
            raise ValueError("no rows to write")
        arrays: list[pa.Array] = []
        for name, values in self._values.items():
            if name in self._tensors:  # a tensor type pyarrow writes
                arrays.append(tensor_column(np.stack(values)))
            else:
                arrays.append(pa.array(values, self.schema.field(name).type))
        fields = [self.schema.field(name) for name in self._values]
        rest = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
        self._layout.write(where, rest, self._pages, self.num_rows)


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


def _numpy_dtype(tensor_type: pa.FixedShapeTensorType) -> np.dtype:
    """The numpy dtype of a tensor type's values (``to_pandas_dtype`` would import pandas)."""
    return pa.array([], tensor_type.value_type).to_numpy().dtype


def _writable_tensor(column: pa.ChunkedArray) -> bool:
    """A fixed-shape tensor column of a covered value type with no null cell or value."""
    if not isinstance(column.type, pa.FixedShapeTensorType):
        return False
    if str(column.type.value_type) not in _VALUE_TYPES or column.null_count:
        return False
    return all(chunk.storage.flatten().null_count == 0 for chunk in column.chunks)


@dataclass(frozen=True)
class _Leaf:
    path: tuple[bytes, ...]
    element: tc.TStruct  # the leaf's SchemaElement
    max_def: int
    max_rep: int


class _Layout:
    """A schema's Parquet layout as pyarrow writes it, and the file's assembly."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.meta, _ = _footer(_pyarrow_bytes(schema.empty_table()))
        self.leaves = _leaves(self.meta)

    def tensor_pages(self, name: str) -> TensorPages:
        """A page encoder for the tensor column ``name``."""
        (leaf,) = [leaf for leaf in self.leaves if leaf.path[0] == name.encode()]
        if leaf.max_rep != 1:
            raise ValueError(f"tensor column {name!r} has {leaf.max_rep} repeated levels")
        tensor_type = self.schema.field(name).type
        return TensorPages(
            path=leaf.path,
            physical=tc.value(leaf.element, pt.SCHEMA_ELEMENT_TYPE),
            max_def=leaf.max_def,
            value_dtype=_numpy_dtype(tensor_type),
            cell=int(np.prod(tensor_type.shape)),
            codec=COMPRESSION,
            level=COMPRESSION_LEVEL,
        )

    def write(
        self,
        where: str | os.PathLike[str] | BinaryIO,
        rest: pa.Table,
        pages: Mapping[str, TensorPages],
        num_rows: int,
    ) -> None:
        """Write the file: ``rest`` (the other columns) by pyarrow, then the tensor pages."""
        if isinstance(where, (str, os.PathLike)):
            with open(Path(where), "wb") as sink:
                self._write(sink, rest, pages, num_rows)
        else:
            self._write(where, rest, pages, num_rows)

    def _write(
        self, sink: BinaryIO, rest: pa.Table, pages: Mapping[str, TensorPages], num_rows: int
    ) -> None:
        rest_chunks: list[tc.TStruct] = []
        if rest.num_columns:
            rest_file = _pyarrow_bytes(rest)
            rest_meta, offset = _footer(rest_file)
            sink.write(rest_file[:offset])  # pyarrow's chunks keep their offsets
            groups = _items(rest_meta, pt.FILE_METADATA_ROW_GROUPS)
            rest_chunks = _items(groups[0], pt.ROW_GROUP_COLUMNS) if groups else []
        else:
            sink.write(MAGIC)
            offset = len(MAGIC)
        for c in rest_chunks:
            _check_no_index(c)
        by_path = {
            tuple(_items(_meta(c), pt.COLUMN_META_DATA_PATH_IN_SCHEMA)): c for c in rest_chunks
        }

        chunks: list[tc.TStruct] = []
        for leaf in self.leaves:
            name = leaf.path[0].decode()
            if name in pages:
                chunk = pages[name].write(sink, offset)
                offset += tc.value(_meta(chunk), pt.COLUMN_META_DATA_TOTAL_COMPRESSED_SIZE)
                chunks.append(chunk)
            else:
                chunks.append(by_path[leaf.path])
        metas = [_meta(c) for c in chunks]
        uncompressed = sum(tc.value(m, pt.COLUMN_META_DATA_TOTAL_UNCOMPRESSED_SIZE) for m in metas)
        compressed = sum(tc.value(m, pt.COLUMN_META_DATA_TOTAL_COMPRESSED_SIZE) for m in metas)
        row_group: tc.TStruct = {
            pt.ROW_GROUP_COLUMNS: (tc.LIST, (tc.STRUCT, chunks)),
            pt.ROW_GROUP_TOTAL_BYTE_SIZE: (tc.I64, uncompressed),
            pt.ROW_GROUP_NUM_ROWS: (tc.I64, num_rows),
            pt.ROW_GROUP_FILE_OFFSET: (tc.I64, min(_first_page(m) for m in metas)),
            pt.ROW_GROUP_TOTAL_COMPRESSED_SIZE: (tc.I64, compressed),
        }
        meta = dict(self.meta)
        meta[pt.FILE_METADATA_NUM_ROWS] = (tc.I64, num_rows)
        meta[pt.FILE_METADATA_ROW_GROUPS] = (tc.LIST, (tc.STRUCT, [row_group]))
        footer = tc.encode_struct(meta)
        sink.write(footer + struct.pack("<I", len(footer)) + MAGIC)


def _items(struct_: tc.TStruct, field: int) -> list[Any]:
    """The elements of a struct's list field ([] when the field is absent)."""
    items: list[Any] = tc.value(struct_, field, (None, []))[1]  # (element type, elements)
    return items


def _meta(chunk: tc.TStruct) -> tc.TStruct:
    """A ColumnChunk's ColumnMetaData."""
    meta: tc.TStruct = tc.value(chunk, pt.COLUMN_CHUNK_META_DATA)
    return meta


def _first_page(meta: tc.TStruct) -> int:
    """The file offset of a column chunk's first page: its dictionary page, if it has one."""
    data_page = tc.value(meta, pt.COLUMN_META_DATA_DATA_PAGE_OFFSET)
    offset: int = tc.value(meta, pt.COLUMN_META_DATA_DICTIONARY_PAGE_OFFSET, data_page)
    return offset


def _pyarrow_bytes(table: pa.Table) -> bytes:
    """``table`` as pyarrow writes it, without a page index (the tensor chunks have none)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, write_page_index=False, **parquet_write_options(table.schema))
    return buf.getvalue()


def _footer(data: bytes) -> tuple[tc.TStruct, int]:
    """A Parquet file's bytes -> (its decoded FileMetaData, the footer's offset)."""
    if data[:4] != MAGIC or data[-4:] != MAGIC:
        raise ValueError("not a Parquet file (no PAR1 magic)")
    (length,) = struct.unpack("<I", data[-8:-4])
    start = len(data) - 8 - length
    meta, _ = tc.decode_struct(data[start : len(data) - 8])
    return meta, start


def _check_no_index(chunk: tc.TStruct) -> None:
    """pyarrow's chunks are copied in place: nothing in them may point past its data."""
    meta = _meta(chunk)
    bloom = (pt.COLUMN_META_DATA_BLOOM_FILTER_OFFSET, pt.COLUMN_META_DATA_BLOOM_FILTER_LENGTH)
    if any(f in chunk for f in pt.COLUMN_CHUNK_PAGE_INDEX_FIELDS) or any(f in meta for f in bloom):
        raise ValueError("page indexes and bloom filters are not supported by this writer")


def _leaves(meta: tc.TStruct) -> list[_Leaf]:
    """The schema's leaf columns in order, with their paths and maximum levels."""
    elements = _items(meta, pt.FILE_METADATA_SCHEMA)
    leaves: list[_Leaf] = []

    def children(el: tc.TStruct) -> int:
        n: int = tc.value(el, pt.SCHEMA_ELEMENT_NUM_CHILDREN, 0)
        return n

    def walk(i: int, path: tuple[bytes, ...], d: int, r: int) -> int:
        el = elements[i]
        rep = tc.value(el, pt.SCHEMA_ELEMENT_REPETITION_TYPE, pt.REQUIRED)
        d += rep != pt.REQUIRED
        r += rep == pt.REPEATED
        here = (*path, tc.value(el, pt.SCHEMA_ELEMENT_NAME))
        i += 1
        if children(el) == 0:
            leaves.append(_Leaf(here, el, d, r))
        for _ in range(children(el)):
            i = walk(i, here, d, r)
        return i

    i = 1  # element 0 is the root
    for _ in range(children(elements[0])):
        i = walk(i, (), 0, 0)
    return leaves
